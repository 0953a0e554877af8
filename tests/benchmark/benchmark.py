# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark of docs/benchmark.md: our modules against the usual recipe and the machine's limit.

Run it through ``scripts/benchmark`` (which sets up the engine, images, venv and collection
path first). Everything it creates carries a random prefix ``pb-<8 hex>-`` and is removed at
the end, on failure and on Ctrl-C too, unless ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time

import datasets
import report
import rows as row_catalogue
from session import Session, log

DATASETS = ("postgres", "uploads")


def build_dataset(session, dataset, size_bytes, seed):
    """Create and fill the source volume; returns (volume, description)."""
    started = time.monotonic()
    volume = session.create_volume("%s-%s" % (dataset, format_size(size_bytes)))
    mountpoint = session.mountpoint(volume)
    if dataset == "postgres":
        details = datasets.build_postgres(session.client, volume, session.prefix + "pgbench", size_bytes, log)
    else:
        details = datasets.build_uploads(mountpoint, size_bytes, seed, log)
    os.sync()
    details.update(datasets.tree_size(mountpoint))
    details["build_seconds"] = round(time.monotonic() - started, 1)
    details["requested_bytes"] = size_bytes
    return volume, details


def format_size(size_bytes):
    return ("%.2fGiB" % (size_bytes / report.GIB)).replace(".", "_")


def run_dataset(session, dataset, size_bytes, options, selected):
    """Build one data set, run the selected rows ``options.repeat`` times, return (results, details)."""
    volume, details = build_dataset(session, dataset, size_bytes, options.seed)
    log("%s: %d files, %d directories, %d symlinks, %.1f MiB, built in %.1f s" % (
        dataset, details["files"], details["directories"], details["symlinks"], details["bytes"] / report.MIB,
        details["build_seconds"]))
    context = row_catalogue.Context(session, dataset, volume, details)
    # Every row starts warm: the source is read once before any is timed (see docs/benchmark.md).
    datasets.warm(context.source_mountpoint)
    results = {}
    for row in selected:
        results[row.name] = report.RowResults(row.name, row.kind, row.operation)
        if not row.applies_to(dataset):
            results[row.name].status = row.not_applicable()
    for repetition in range(options.repeat):
        context.repetition = repetition
        context.reset()
        for row in selected:
            result = results[row.name]
            if result.status != "ok" or (row.kind == "recipe" and repetition >= options.recipe_repeat):
                continue
            try:
                outcome = row.run(context)
            except row_catalogue.RowFailed as error:
                result.status = "FAILED: %s" % str(error).replace("\n", " ")[:300]
                log("%s %s: %s" % (dataset, row.name, result.status))
                continue
            finally:
                # Whatever a row wrote is on disk before the next row starts, untimed.
                os.sync()
            result.add(outcome)
            log("%s %s #%d: %.2f s%s%s" % (
                dataset, row.name, repetition + 1, outcome.wall_seconds,
                "" if outcome.peak_rss_bytes is None else ", peak RSS %.1f MiB" % (outcome.peak_rss_bytes / report.MIB),
                "" if outcome.down_seconds is None else ", down %.2f s" % outcome.down_seconds))
        if context.tree_digest:
            details["tree_digest"] = context.tree_digest
        if context.restored_volume:
            context.done_with(context.restored_volume)
        shutil.rmtree(os.path.join(session.workdir, dataset, "rep%d" % repetition), ignore_errors=True)
    for result in results.values():
        if result.status == "ok" and not result.walls:
            result.status = "not run (--recipe-repeat 0)"
    context.close()
    session.remove_volume(volume)
    return results, details


def machine(client):
    """What the numbers came from."""
    def first_line(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return None

    cpu = None
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        memory_kib = int(meminfo.readline().split()[1])
    os_name = None
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as release:
            for line in release:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    engine = client.info()
    import ansible.release  # pylint: disable=import-outside-toplevel
    return dict(
        cpu=cpu, cores=os.cpu_count(), memory_gib=round(memory_kib / 1024 ** 2, 1), os=os_name,
        kernel=platform.release(), docker=engine.get("ServerVersion"), storage_driver=engine.get("Driver"),
        docker_root_filesystem=first_line(["findmnt", "-n", "-o", "FSTYPE", "-T", engine.get("DockerRootDir", "/var/lib/docker")]),
        python=platform.python_version(), ansible_core=ansible.release.__version__, zstd=_zstd_version(first_line(["zstd", "--version"])),
        load_average_at_start=os.getloadavg(),
    )


def _zstd_version(banner):
    found = re.search(r"v(\d+(\.\d+)+)", banner or "")
    return "zstd %s" % found.group(1) if found else None


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        prog="scripts/benchmark", description="Time backup, restore and copy of a volume: the usual recipe, "
        "the machine's limit and persist.docker's modules, side by side (docs/benchmark.md).")
    parser.add_argument("--size", type=float, default=1.0, help="GiB per data set (default 1.0)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each row; the median is reported (default 3)")
    parser.add_argument("--recipe-repeat", type=int, default=1,
                        help="repetitions of the recipe rows (default 1: gzip on one core takes most of the budget)")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset of: %s" % ", ".join(DATASETS))
    parser.add_argument("--rows", help="comma-separated subset of: %s" % ", ".join(row_catalogue.ROW_NAMES))
    parser.add_argument("--memory-check", action="store_true",
                        help="run our data-moving rows at SIZE/4 and at SIZE and compare the module's peak RSS")
    parser.add_argument("--seed", type=int, default=6, help="seed of the uploads generator (default 6)")
    parser.add_argument("--json", metavar="PATH", help="also write every number as JSON to PATH")
    parser.add_argument("--workdir", default="/var/tmp", help="where archives are written (default /var/tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the volumes and archives for inspection")
    parser.add_argument("--report", metavar="PATH", help="measure nothing: print the tables of a run saved with --json")
    options = parser.parse_args(argv)
    options.datasets = [name.strip() for name in options.datasets.split(",") if name.strip()]
    for name in options.datasets:
        if name not in DATASETS:
            parser.error("unknown data set %r (known: %s)" % (name, ", ".join(DATASETS)))
    if options.rows:
        options.rows = [name.strip() for name in options.rows.split(",") if name.strip()]
        for name in options.rows:
            if name not in row_catalogue.ROW_NAMES:
                parser.error("unknown row %r (known: %s)" % (name, ", ".join(row_catalogue.ROW_NAMES)))
    elif options.memory_check:
        options.rows = ["ours-backup", "ours-restore", "ours-copy"]
    if options.size <= 0 or options.repeat < 1 or options.recipe_repeat < 0:
        parser.error("--size must be positive, --repeat at least 1, --recipe-repeat at least 0")
    return options


def _interrupted(signum, _frame):
    raise KeyboardInterrupt("signal %d" % signum)


def measure_all(session, options, selected, everything):
    """Every data set at every size; appends each to ``everything["runs"]`` and prints its table."""
    sizes = [options.size / 4, options.size] if options.memory_check else [options.size]
    for size in sizes:
        for dataset in options.datasets:
            results, details = run_dataset(session, dataset, int(size * report.GIB), options, selected)
            print("\n" + report.dataset_table(report.dataset_title(size, dataset, details), results,
                                              [row.name for row in selected]) + "\n", flush=True)
            everything["runs"].append(dict(
                size_gib=size, dataset=dataset, details=details,
                rows={name: result.as_dict() for name, result in results.items()}, ratios=report.ratios(results)))


def main(argv):
    options = parse_arguments(argv)
    if options.report:
        with open(options.report) as handle:
            print(report.render(json.load(handle), row_catalogue.ROW_NAMES))
        return 0
    signal.signal(signal.SIGTERM, _interrupted)
    selected = [row for row in row_catalogue.ROWS if not options.rows or row.name in options.rows]
    session = Session(options.workdir, options.keep)
    started = time.monotonic()
    everything = dict(machine=machine(session.client), options=vars(options), runs=[], note=row_catalogue.RECIPE_IMAGE_NOTE)
    log("run %s on %s (%s cores, %s GiB), load average %s" % (
        session.prefix, everything["machine"]["cpu"], everything["machine"]["cores"],
        everything["machine"]["memory_gib"], " ".join("%.1f" % load for load in os.getloadavg())))
    try:
        measure_all(session, options, selected, everything)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        session.cleanup()
        return 130
    except BaseException:
        session.cleanup()
        raise
    session.cleanup()
    everything["machine"]["load_average_at_end"] = os.getloadavg()
    everything["seconds"] = round(time.monotonic() - started, 1)
    text = report.render(everything, [row.name for row in selected])
    everything["report"] = text.splitlines()
    print("=" * 100)
    print(text)
    if options.json:
        with open(options.json, "w") as handle:
            json.dump(everything, handle, indent=2, sort_keys=True)
        log("numbers written to %s (reprint: scripts/benchmark --report %s)" % (options.json, options.json))
    failed = [name for run in everything["runs"] for name, row in run["rows"].items() if row["status"].startswith("FAILED")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
