"""The long-running agent (``cronsync agent``): sync on a timer and on demand.

Owns the daemon loop (``loop``), watching the installed files for drift (``watch``),
the control socket that ``cronsync sync --now`` talks to (``control``), the agent's
record for ``status`` (``agentfile``) and its metrics (``metrics``).

After every cycle it writes the host's status item to the fleet table
(``fleetstatus``).

May import: ``run``, ``cloud``, ``secrets``, ``host`` and below; not ``migrate``.
"""
