# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Medians, ratios, targets and the printed tables of the benchmark (pure, no I/O but print)."""

from __future__ import annotations

import statistics
import textwrap

MIB = 1024 ** 2
GIB = 1024 ** 3
RSS_LIMIT_MIB = 150.0
RSS_GROWTH_LIMIT = 0.10


class RowResults:
    """All repetitions of one row on one data set."""

    def __init__(self, name, kind, operation):
        self.name = name
        self.kind = kind
        self.operation = operation
        self.walls = []
        self.peak_rss = []
        self.worker_seconds = []
        self.archive_bytes = []
        self.down_seconds = []
        self.transports = set()
        self.status = "ok"

    def add(self, outcome):
        self.walls.append(outcome.wall_seconds)
        if outcome.peak_rss_bytes is not None:
            self.peak_rss.append(outcome.peak_rss_bytes)
        if outcome.worker_seconds is not None:
            self.worker_seconds.append(outcome.worker_seconds)
        if outcome.archive_bytes is not None:
            self.archive_bytes.append(outcome.archive_bytes)
        if outcome.down_seconds is not None:
            self.down_seconds.append(outcome.down_seconds)
        if outcome.transport:
            self.transports.add(outcome.transport)

    def transport(self):
        """How our rows' data travelled (fifo, api), "-" for rows that are not ours."""
        return "/".join(sorted(self.transports)) or "-"

    @property
    def measured(self):
        return self.status == "ok" and bool(self.walls)

    def median_wall(self):
        return statistics.median(self.walls) if self.measured else None

    def median_rss_mib(self):
        return statistics.median(self.peak_rss) / MIB if self.peak_rss else None

    def median_module(self):
        """The median of the module's own process time (our rows), or None."""
        return statistics.median(self.worker_seconds) if self.measured and self.worker_seconds else None

    def median_archive(self):
        return statistics.median(self.archive_bytes) if self.archive_bytes else None

    def median_down(self):
        """The median of the seconds the service was down (the downtime rows), or None."""
        return statistics.median(self.down_seconds) if self.measured and self.down_seconds else None

    @classmethod
    def from_dict(cls, name, data):
        """The inverse of ``as_dict`` (for reprinting a saved run)."""
        row = cls(name, data["kind"], data["operation"])
        row.walls = list(data["wall_seconds"])
        row.peak_rss = list(data["peak_rss_bytes"])
        row.worker_seconds = list(data["worker_seconds"])
        row.archive_bytes = list(data["archive_bytes"])
        row.down_seconds = list(data.get("down_seconds", []))
        row.transports = set(data.get("transports", []))
        row.status = data["status"]
        return row

    def as_dict(self):
        return dict(
            kind=self.kind, operation=self.operation, status=self.status, wall_seconds=self.walls,
            median_wall_seconds=self.median_wall(), peak_rss_bytes=self.peak_rss, median_peak_rss_mib=self.median_rss_mib(),
            worker_seconds=self.worker_seconds, archive_bytes=self.archive_bytes, transports=sorted(self.transports),
            down_seconds=self.down_seconds, median_down_seconds=self.median_down(),
        )


def _ratio(numerator, denominator):
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def ratios(rows):
    """The ratios of the issue's targets from one data set's rows ({name: RowResults}). Our
    rows count by their module time (the module's own process, without Ansible's fixed
    cost per task, shown by ansible-overhead); the recipe and limit rows by wall time (their
    restores and copies end with a sync of what they wrote, as ours make their data durable
    before they report success)."""

    def wall(name):
        return rows[name].median_wall() if name in rows else None

    def module(name):
        return rows[name].median_module() if name in rows else None

    def archive(name):
        return rows[name].median_archive() if name in rows and rows[name].measured else None

    def down(name):
        return rows[name].median_down() if name in rows else None

    return {
        "backup ours/recipe": _ratio(wall("ours-backup"), wall("recipe-backup")),
        "restore ours/recipe": _ratio(wall("ours-restore"), wall("recipe-restore")),
        "copy ours/recipe": _ratio(wall("ours-copy"), wall("recipe-copy")),
        "backup module/limit": _ratio(module("ours-backup"), wall("limit-backup")),
        "backup recipe/module": _ratio(wall("recipe-backup"), module("ours-backup")),
        "archive ours/recipe": _ratio(archive("ours-backup"), archive("recipe-backup")),
        "restore module/limit": _ratio(module("ours-restore"), wall("limit-restore")),
        "copy module/limit": _ratio(module("ours-copy"), wall("limit-copy")),
        "rebackup/backup": _ratio(module("ours-rebackup"), module("ours-backup")),
        "noop-restore/restore": _ratio(module("ours-noop-restore"), module("ours-restore")),
        # Not targets: what encryption at rest costs, and how much of the limit's time moving
        # the bytes alone takes (floor rows: the Docker API stream, the co-located FIFO).
        "encrypted/plain backup": _ratio(wall("ours-backup-age"), wall("ours-backup")),
        "stream-out floor/limit backup": _ratio(wall("floor-stream-out"), wall("limit-backup")),
        "stream-in floor/limit restore": _ratio(wall("floor-stream-in"), wall("limit-restore")),
        "fifo-out floor/limit backup": _ratio(wall("floor-fifo-out"), wall("limit-backup")),
        "fifo-in floor/limit restore": _ratio(wall("floor-fifo-in"), wall("limit-restore")),
        # Reported, not judged: what the guarantees cost at best on this machine (the verified
        # rows against the limit), and what ours costs on top of that.
        "backup verified/limit": _ratio(wall("verified-backup"), wall("limit-backup")),
        "restore verified/limit": _ratio(wall("verified-restore"), wall("limit-restore")),
        "copy verified/limit": _ratio(wall("verified-copy"), wall("limit-copy")),
        "backup module/verified": _ratio(module("ours-backup"), wall("verified-backup")),
        "restore module/verified": _ratio(module("ours-restore"), wall("verified-restore")),
        "copy module/verified": _ratio(module("ours-copy"), wall("verified-copy")),
        # Reported, not judged (the issue sets no bound): the seconds the service was down.
        "downtime backup ours/recipe": _ratio(down("ours-backup-stop"), down("recipe-backup-stop")),
        "downtime restore ours/recipe": _ratio(down("ours-restore-stop"), down("recipe-restore-stop")),
    }


# (ratio name, comparison, bound, what the issue says)
TARGETS = [
    ("backup ours/recipe", "<=", 1.0, "backup no slower than the article's recipe (wall)"),
    ("restore ours/recipe", "<=", 1.0, "restore no slower than the recipe (wall; the recipe syncs)"),
    ("copy ours/recipe", "<=", 1.0, "copy no slower than the recipe (wall; the recipe syncs)"),
    ("backup module/limit", "<=", 1.3, "backup's module time within 1.3x of the limit"),
    ("backup recipe/module", ">=", 5.0, "backup's module time at least 5x faster than the recipe"),
    ("archive ours/recipe", "<=", 1.0, "archive no larger than the recipe's"),
    ("restore module/limit", "<=", 1.5, "restore's module time within 1.5x of the limit (which syncs)"),
    ("copy module/limit", "<=", 1.5, "copy's module time within 1.5x of cp -a and sync"),
    ("rebackup/backup", "<=", 0.20, "unchanged re-backup at most 20% of a backup (module time)"),
    ("noop-restore/restore", "<=", 0.50, "no-op restore at most 50% of a restore (module time)"),
]
# (ratio name, what it says): printed with the targets, without a verdict.
REPORTED = [
    ("backup verified/limit", "the limit plus the guarantees' hashing and fsync, over the limit (bound 1.3)"),
    ("backup module/verified", "our module time over that verified floor"),
    ("restore verified/limit", "the limit plus sha256 checks, staging, read-back and swap, over the limit (bound 1.5)"),
    ("restore module/verified", "our module time over that verified floor"),
    ("copy verified/limit", "cp's work as tar | sha256 | tar -x plus staging, read-back and swap, over the limit (bound 1.5)"),
    ("copy module/verified", "our module time over that verified floor"),
    ("downtime backup ours/recipe", "seconds PostgreSQL was down: containers=stop backup over stop, tar czf, start"),
    ("downtime restore ours/recipe", "seconds PostgreSQL was down: containers=stop restore over stop, tar xzf, start"),
]
# Wide enough for every row's and every ratio's name.
ROW_WIDTH = 19
RATIO_WIDTH = 28


def _verdict(value, comparison, bound):
    passed = value <= bound if comparison == "<=" else value >= bound
    return "PASS" if passed else "MISS"


def _cell(value, template="%.1f"):
    return template % value if value is not None else "-"


def dataset_table(title, rows, order):
    """The printed table of one data set: one line per row, then its ratios."""
    lines = [title, "  %s %8s %17s %11s %9s %9s %5s %9s %7s" % (
        "row".ljust(ROW_WIDTH), "median s", "min..max s", "archive MiB", "RSS MiB", "module s", "runs", "transport", "down s")]
    for name in order:
        if name not in rows:
            continue
        row = rows[name]
        if not row.measured:
            lines.append("  %s %s" % (name.ljust(ROW_WIDTH), row.status))
            continue
        archive = row.median_archive()
        worker = statistics.median(row.worker_seconds) if row.kind == "ours" and row.worker_seconds else None
        lines.append("  %s %8.2f %17s %11s %9s %9s %5d %9s %7s" % (
            name.ljust(ROW_WIDTH), row.median_wall(), "%.2f..%.2f" % (min(row.walls), max(row.walls)),
            _cell(archive / MIB if archive is not None else None), _cell(row.median_rss_mib()),
            _cell(worker, "%.2f"), len(row.walls), row.transport(), _cell(row.median_down(), "%.2f"),
        ))
    found = [(name, value) for name, value in ratios(rows).items() if value is not None]
    if found:
        lines.extend(textwrap.wrap("ratios of medians: " + ", ".join("%s %.2f" % pair for pair in found), 100,
                                   initial_indent="  ", subsequent_indent="    "))
    return "\n".join(lines)


def target_lines(results, memory=None):
    """The TARGETS block: every target of the issue on every data set, PASS or MISS."""
    lines = ["TARGETS (ratios of medians within this run)"]
    for dataset, rows in results.items():
        found = ratios(rows)
        missing = []
        for name, comparison, bound, text in TARGETS:
            value = found.get(name)
            if value is None:
                missing.append(name)
                continue
            lines.append("  %-4s %-9s %s %6.2f (target %s %g): %s" % (
                _verdict(value, comparison, bound), dataset, name.ljust(RATIO_WIDTH), value, comparison, bound, text))
        for name, text in REPORTED:
            if found.get(name) is not None:
                lines.append("  %-4s %-9s %s %6.2f (reported, no target): %s" % ("", dataset, name.ljust(RATIO_WIDTH), found[name], text))
        if missing:
            lines.append("  n/a  %-9s not measured (its rows were not run, or failed): %s" % (dataset, ", ".join(missing)))
    peak = max_ours_rss(results)
    if peak is not None:
        lines.append("  %-4s %-9s %s %6.1f (target < %g MiB): the module's peak RSS, highest of our rows (%s, %s)" % (
            "PASS" if peak[0] < RSS_LIMIT_MIB else "MISS", "all", "peak RSS MiB".ljust(RATIO_WIDTH), peak[0], RSS_LIMIT_MIB, peak[1], peak[2]))
    if memory is None:
        lines.append("  n/a  all       %s (target < 10%%): not measured in this run; run scripts/benchmark --memory-check"
                     % "RSS growth at 4x data".ljust(RATIO_WIDTH + 7))
    else:
        for dataset, name, small, large in memory:
            growth = _ratio(large, small)
            growth = growth - 1 if growth is not None else None
            verdict = "n/a" if growth is None else ("PASS" if growth < RSS_GROWTH_LIMIT else "MISS")
            lines.append("  %-4s %-9s %s %6s (target < 10%%): %s MiB at 1/4 size, %s MiB at full size" % (
                verdict, dataset, (name + " RSS growth").ljust(RATIO_WIDTH), _cell(growth * 100 if growth is not None else None, "%+.1f%%"),
                _cell(small), _cell(large)))
    return "\n".join(lines)


def max_ours_rss(results):
    """(MiB, row, data set) of the highest median peak RSS among our data-moving rows."""
    best = None
    for dataset, rows in results.items():
        for row in rows.values():
            if row.kind != "ours" or row.operation == "overhead" or not row.measured:
                continue
            value = row.median_rss_mib()
            if value is not None and (best is None or value > best[0]):
                best = (value, row.name, dataset)
    return best


def memory_pairs(small_results, large_results):
    """[(data set, row, MiB at the small size, MiB at the large size)] for our rows in both."""
    pairs = []
    for dataset, rows in large_results.items():
        for name, row in rows.items():
            other = small_results.get(dataset, {}).get(name)
            if row.kind != "ours" or row.operation == "overhead" or other is None:
                continue
            if row.measured and other.measured:
                pairs.append((dataset, name, other.median_rss_mib(), row.median_rss_mib()))
    return pairs


def dataset_title(size_gib, dataset, details):
    return "%s, %.2f GiB requested: %.2f GiB in %d files%s%s" % (
        dataset, size_gib, details["bytes"] / GIB, details["files"],
        ", pgbench scale %d" % details["pgbench_scale"] if "pgbench_scale" in details else "",
        ", tree digest %s..." % details["tree_digest"][:16] if "tree_digest" in details else "")


def render(everything, order):
    """The whole printed report of a run (as saved by ``--json``): tables, targets, machine."""
    sizes = []
    by_size = {}
    tables = []
    for run in everything["runs"]:
        rows = {name: RowResults.from_dict(name, data) for name, data in run["rows"].items()}
        if run["size_gib"] not in by_size:
            sizes.append(run["size_gib"])
            by_size[run["size_gib"]] = {}
        by_size[run["size_gib"]][run["dataset"]] = rows
        tables.append(dataset_table(dataset_title(run["size_gib"], run["dataset"], run["details"]), rows, order))
    options = everything["options"]
    memory = memory_pairs(by_size[sizes[0]], by_size[sizes[-1]]) if options["memory_check"] and len(sizes) > 1 else None
    machine = everything["machine"]
    return "\n\n".join(tables) + "\n\n" + target_lines(by_size[sizes[-1]] if sizes else {}, memory) + "\n\n" + (
        "Machine: %(cpu)s, %(cores)s cores, %(memory_gib)s GiB, %(os)s, kernel %(kernel)s, docker %(docker)s "
        "(%(storage_driver)s on %(docker_root_filesystem)s), Python %(python)s, ansible-core %(ansible_core)s, %(zstd)s\n" % machine
    ) + "Load average at start %s, at end %s; whole run %.0f s. Recipe rows ran %d time(s), the others %d time(s). %s" % (
        " ".join("%.1f" % value for value in machine["load_average_at_start"]),
        " ".join("%.1f" % value for value in machine.get("load_average_at_end", ())), everything.get("seconds", 0),
        min(options["recipe_repeat"], options["repeat"]), options["repeat"], everything.get("note", ""))
