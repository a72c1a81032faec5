#!/usr/bin/env python3
"""Build the public sitemap from the app's internal URL export.

Input (SITEMAP_SOURCE): JSON Lines, one object per URL, from an http(s) URL (the
app's internal export, authenticated with INTERNAL_API_TOKEN) or a local file:

    {"loc": "https://www.example.com/biz/blue-bottle-kyoto", "lastmod": "2024-05-01T09:12:00Z"}

Output (SITEMAP_OUTPUT_DIR), following https://www.sitemaps.org/protocol.html:

    sitemap.xml                 sitemap index, lists every chunk
    sitemap-00001.xml.gz ...    at most 50,000 URLs and 50 MB uncompressed each

Publication is safe for readers: chunks are written under temporary names and
renamed into place first, the index is replaced last, and only then are chunks
that the new index no longer lists removed. A bad export (too few URLs, many
URLs outside SITEMAP_BASE_URL) fails the run and leaves the live sitemap alone.
With SITEMAP_S3_URI set, the output directory is then synced to S3 (aws CLI).

Environment:
    SITEMAP_SOURCE        export URL or file                      (required)
    SITEMAP_BASE_URL      site root every <loc> must start with   (required)
    SITEMAP_OUTPUT_DIR    where the sitemap files are written     (required)
    SITEMAP_PUBLIC_URL    URL the chunks are served from (default: SITEMAP_BASE_URL)
    SITEMAP_S3_URI        s3://bucket/prefix/ to publish to       (optional)
    SITEMAP_MIN_URLS      refuse to publish fewer URLs (default 1)
    SITEMAP_MAX_REJECTED  max share of rejected entries, 0-1 (default 0.01)
    INTERNAL_API_TOKEN    bearer token for an http(s) source       (optional)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape

PROG = "build-sitemap"
MAX_URLS_PER_FILE = 50_000
MAX_BYTES_PER_FILE = 50 * 1024 * 1024
XML_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
URLSET_OPEN = '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
URLSET_CLOSE = "</urlset>\n"
CHANGEFREQS = {"always", "hourly", "daily", "weekly", "monthly", "yearly", "never"}


class SitemapError(Exception):
    """A problem that must fail the run with a clear message."""


def log(message: str) -> None:
    print(f"{PROG}: {message}", flush=True)


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise SitemapError(f"{name} is not set (see jobs/sitemap-build.toml)")
    return value


def open_source(source: str) -> IO[bytes]:
    if source.startswith(("https://", "http://")):
        request = urllib.request.Request(source, headers={"Accept": "application/x-ndjson"})
        token = os.environ.get("INTERNAL_API_TOKEN")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            return urllib.request.urlopen(request, timeout=60)  # noqa: S310 - URL from config
        except OSError as exc:
            raise SitemapError(f"cannot fetch {source}: {exc}") from exc
    try:
        return open(source, "rb")
    except OSError as exc:
        raise SitemapError(f"cannot open {source}: {exc}") from exc


def normalise_lastmod(value: object) -> str | None:
    """Return a W3C datetime (UTC, seconds) or None when absent or unparsable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def url_element(entry: dict[str, object]) -> str:
    parts = [f"<url><loc>{escape(str(entry['loc']))}</loc>"]
    lastmod = normalise_lastmod(entry.get("lastmod"))
    if lastmod:
        parts.append(f"<lastmod>{lastmod}</lastmod>")
    changefreq = entry.get("changefreq")
    if isinstance(changefreq, str) and changefreq in CHANGEFREQS:
        parts.append(f"<changefreq>{changefreq}</changefreq>")
    priority = entry.get("priority")
    if isinstance(priority, (int, float)) and 0 <= priority <= 1:
        parts.append(f"<priority>{priority:.1f}</priority>")
    parts.append("</url>\n")
    return "".join(parts)


def read_entries(stream: IO[bytes], base_url: str, stats: dict[str, int]) -> Iterator[str]:
    """Yield one <url> element per valid entry; count the rejected ones."""
    seen: set[str] = set()
    for lineno, raw in enumerate(stream, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            stats["rejected"] += 1
            if stats["rejected"] <= 5:
                log(f"line {lineno}: not valid JSON, skipped")
            continue
        loc = entry.get("loc") if isinstance(entry, dict) else None
        if not isinstance(loc, str) or not loc.startswith(base_url) or len(loc) > 2048:
            stats["rejected"] += 1
            if stats["rejected"] <= 5:
                log(f"line {lineno}: loc missing, too long or outside {base_url}, skipped")
            continue
        if loc in seen:
            stats["duplicates"] += 1
            continue
        seen.add(loc)
        stats["accepted"] += 1
        yield url_element(entry)


def write_chunks(elements: Iterator[str], build_dir: Path) -> list[Path]:
    """Write gzipped urlset chunks into build_dir; return their paths in order."""
    chunks: list[Path] = []
    out: gzip.GzipFile | None = None
    count = size = 0
    empty_size = len((XML_HEADER + URLSET_OPEN + URLSET_CLOSE).encode())
    for element in elements:
        data = element.encode()
        if out is None or count >= MAX_URLS_PER_FILE or size + len(data) > MAX_BYTES_PER_FILE:
            if out is not None:
                out.write(URLSET_CLOSE.encode())
                out.close()
            path = build_dir / f"sitemap-{len(chunks) + 1:05d}.xml.gz"
            # mtime=0: identical content gives identical bytes, so S3 sync skips it.
            out = gzip.GzipFile(path, "wb", compresslevel=9, mtime=0)
            out.write((XML_HEADER + URLSET_OPEN).encode())
            chunks.append(path)
            count, size = 0, empty_size
        out.write(data)
        count += 1
        size += len(data)
    if out is not None:
        out.write(URLSET_CLOSE.encode())
        out.close()
    return chunks


def index_xml(chunks: list[Path], public_url: str, now: str) -> str:
    lines = [XML_HEADER, '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n']
    for chunk in chunks:
        loc = escape(public_url + chunk.name)
        lines.append(f"<sitemap><loc>{loc}</loc><lastmod>{now}</lastmod></sitemap>\n")
    lines.append("</sitemapindex>\n")
    return "".join(lines)


def publish(chunks: list[Path], index: str, output_dir: Path) -> int:
    """Move chunks into place, then the index; remove chunks no longer listed."""
    for chunk in chunks:
        os.replace(chunk, output_dir / chunk.name)
    fd, tmp_name = tempfile.mkstemp(prefix=".sitemap.xml.", dir=output_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(index)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp_name, 0o644)
    os.replace(tmp_name, output_dir / "sitemap.xml")
    listed = {chunk.name for chunk in chunks}
    removed = 0
    for old in output_dir.glob("sitemap-*.xml.gz"):
        if old.name not in listed:
            old.unlink()
            removed += 1
    return removed


def sync_to_s3(output_dir: Path, s3_uri: str) -> None:
    command = [
        "aws", "s3", "sync", "--only-show-errors", "--delete",
        "--exclude", "*", "--include", "sitemap.xml", "--include", "sitemap-*.xml.gz",
        "--cache-control", "public, max-age=3600",
        f"{output_dir}/", s3_uri,
    ]
    try:
        subprocess.run(command, check=True)
    except FileNotFoundError as exc:
        raise SitemapError("aws CLI not found in PATH; cannot publish to S3") from exc
    except subprocess.CalledProcessError as exc:
        raise SitemapError(f"aws s3 sync to {s3_uri} failed with exit code {exc.returncode}") from exc


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", help="override SITEMAP_SOURCE (URL or file)")
    parser.add_argument("--output-dir", help="override SITEMAP_OUTPUT_DIR")
    parser.add_argument("--no-upload", action="store_true", help="skip the S3 sync")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    source = args.source or env("SITEMAP_SOURCE")
    base_url = env("SITEMAP_BASE_URL")
    if not base_url.endswith("/"):
        base_url += "/"
    public_url = os.environ.get("SITEMAP_PUBLIC_URL") or base_url
    if not public_url.endswith("/"):
        public_url += "/"
    output_dir = Path(args.output_dir or env("SITEMAP_OUTPUT_DIR"))
    try:
        min_urls = int(env("SITEMAP_MIN_URLS", "1"))
        max_rejected = float(env("SITEMAP_MAX_REJECTED", "0.01"))
    except ValueError as exc:
        raise SitemapError(f"SITEMAP_MIN_URLS / SITEMAP_MAX_REJECTED: {exc}") from exc

    output_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    stats = {"accepted": 0, "rejected": 0, "duplicates": 0}
    log(f"building from {source} into {output_dir}")

    with tempfile.TemporaryDirectory(prefix=".build-", dir=output_dir) as tmp:
        with open_source(source) as stream:
            chunks = write_chunks(read_entries(stream, base_url, stats), Path(tmp))
        total = stats["accepted"] + stats["rejected"]
        log(
            f"{stats['accepted']} URLs in {len(chunks)} chunk(s); "
            f"{stats['rejected']} rejected, {stats['duplicates']} duplicates"
        )
        if stats["accepted"] < min_urls:
            raise SitemapError(
                f"only {stats['accepted']} URLs, expected at least {min_urls}; live sitemap left unchanged"
            )
        if total and stats["rejected"] / total > max_rejected:
            raise SitemapError(
                f"{stats['rejected']} of {total} entries rejected (limit {max_rejected:.1%}); "
                "live sitemap left unchanged"
            )
        for chunk in chunks:
            chunk.chmod(0o644)
        removed = publish(chunks, index_xml(chunks, public_url, now), output_dir)
    log(f"published {output_dir / 'sitemap.xml'}; removed {removed} stale chunk(s)")

    s3_uri = os.environ.get("SITEMAP_S3_URI")
    if s3_uri and not args.no_upload:
        sync_to_s3(output_dir, s3_uri)
        log(f"synced to {s3_uri}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SitemapError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        sys.exit(1)
