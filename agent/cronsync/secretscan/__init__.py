"""Finding secrets written inline in command text (pure): what ``inventory``,
``import`` and ``adopt`` use to spot a password in a crontab line before it reaches git.

Owns the kinds of inline secret and the ``Finding`` record (``kinds``), which names and
words announce one (``names``, ``words``), the detectors for commands, programs and
token shapes (``commands``, ``programs``, ``patterns``), the entry points that find
and mask them in a command or in a crontab line read every way cron could read it
(``scan``), and values found once, hidden wherever else they show (``known``).

May import: the standard library only (it sits beside ``core`` at the bottom).
"""
