# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""What to do with the containers that mount a volume while it is backed up or restored.

Pure logic: it sees the engine's container descriptions as plain dicts and decides, for
each container, whether it is stopped, paused, left alone, or whether the operation must be
refused; and in which order stopped containers go down and come back up.
"""

from __future__ import annotations

from typing import AbstractSet, Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

POLICIES = ("fail", "stop", "pause", "ignore")
# A container opts in with this label (for example persist.docker.containers=stop); the
# module option, when given, wins over it.
POLICY_LABEL = "persist.docker.containers"
# Compose records a service's dependencies as "db:service_started:false,cache:...".
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
COMPOSE_DEPENDS_LABEL = "com.docker.compose.depends_on"

READS = "reads"
WRITES = "writes"

CONSISTENCY_METHODS = {
    "stop": "containers stopped",
    "pause": "containers paused (crash-consistent only)",
    "ignore": "live copy while containers ran (crash-consistent at best)",
}


class PolicyRefusal(Exception):
    """The operation must not run: ``containers`` (plan entries) are the reason."""

    def __init__(self, reason: str, containers: List[Dict[str, Any]]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.containers = containers


def effective_policy(option: Optional[str], labels: Optional[Mapping[str, str]]) -> Tuple[str, str]:
    """(policy, where it came from) for one container: the option, its label, or the default."""
    if option:
        return option, "option"
    labelled = (labels or {}).get(POLICY_LABEL, "").strip().lower()
    if labelled:
        if labelled not in POLICIES:
            raise ValueError(
                "label %s=%s is not one of %s" % (POLICY_LABEL, labelled, ", ".join(POLICIES))
            )
        return labelled, "label"
    return "fail", "default"


def plan(
    users: Iterable[Mapping[str, Any]], labels_of: Mapping[str, Mapping[str, str]], option: Optional[str], access: str, refuse: bool = True,
) -> List[Dict[str, Any]]:
    """Decide per container what the operation does with it.

    ``users`` are the volume's containers (see _volume_spec.mount_table), ``labels_of`` maps a
    container id to its labels, ``option`` is the module's ``containers`` option (None when
    unset) and ``access`` is READS (backup, copy source) or WRITES (restore, copy target).

    Returns plan entries (the user's keys plus ``policy``, ``policy_from`` and ``action``:
    stop, pause, ignore or none). Raises PolicyRefusal when a container's policy is ``fail``
    and it would see or cause an inconsistent copy, or when a writer asks to be paused.
    A label may make a container stop or pause, but ``ignore`` from a label does not leave
    it running while the volume is written (an image can carry labels into every container
    made from it): for WRITES that label counts as ``fail``; only the option can say ignore.
    Raises ValueError for a label with an unknown policy. With ``refuse`` false, entries
    that would be refused are returned with the action ``fail`` instead.
    """
    entries = []
    for user in users:
        policy, source = effective_policy(option, labels_of.get(user["id"]))
        if access == WRITES and policy == "ignore" and source == "label":
            policy = "fail"
        entry = dict(user, policy=policy, policy_from=source, action="none")
        # Readers of a volume being read do not matter; anything running while the volume
        # is written would see files change under it.
        concerned = user["running"] and (access == WRITES or not user["read_only"])
        if concerned:
            entry["action"] = policy
        entries.append(entry)
    refused = [entry for entry in entries if entry["action"] == "fail"]
    if refused and refuse:
        raise PolicyRefusal("fail", refused)
    if access == WRITES and refuse:
        paused = [entry for entry in entries if entry["action"] == "pause"]
        if paused:
            raise PolicyRefusal("pause", paused)
    return entries


def consistency_method(entries: Iterable[Mapping[str, Any]]) -> str:
    """How the data was made consistent, in words, from the plan's actions."""
    actions = set(entry["action"] for entry in entries) - {"none"}
    if not actions:
        return "no running writer"
    return "; ".join(CONSISTENCY_METHODS[action] for action in ("stop", "pause", "ignore") if action in actions)


def dependencies(inspect: Mapping[str, Any], by_name: Mapping[str, str], services: Mapping[Tuple[str, str], Iterable[str]]) -> Set[Optional[str]]:
    """Ids of the containers that container ``inspect`` needs running before it starts.

    ``by_name`` maps container names to ids; ``services`` maps (compose project, service)
    to ids. Considered: a shared network namespace (network_mode container:X), legacy links,
    volumes_from, and Compose's depends_on within the same project.
    """
    host_config = inspect.get("HostConfig") or {}
    needed: Set[Optional[str]] = set()
    network_mode = host_config.get("NetworkMode") or ""
    if network_mode.startswith("container:"):
        needed.add(_resolve(network_mode[len("container:"):], by_name))
    for link in host_config.get("Links") or []:
        needed.add(_resolve(link.split(":", 1)[0].lstrip("/"), by_name))
    for source in host_config.get("VolumesFrom") or []:
        needed.add(_resolve(source.split(":", 1)[0], by_name))
    labels = (inspect.get("Config") or {}).get("Labels") or {}
    project = labels.get(COMPOSE_PROJECT_LABEL)
    for item in (labels.get(COMPOSE_DEPENDS_LABEL) or "").split(","):
        service = item.split(":", 1)[0].strip()
        if project and service:
            needed.update(services.get((project, service), ()))
    needed.discard(None)
    needed.discard(inspect.get("Id"))
    return needed


def _resolve(reference: str, by_name: Mapping[str, str]) -> str:
    """The id of a container named or id-referenced by ``reference``, or the reference."""
    return by_name.get(reference.lstrip("/"), reference)


def start_order(ids: Iterable[str], needs: Mapping[str, AbstractSet[Optional[str]]], names: Mapping[str, str]) -> List[str]:
    """``ids`` ordered so that every container comes after those it needs (among ``ids``);
    ties and cycles fall back to name order, so the order is stable. Stop in reverse."""
    pending = sorted(ids, key=lambda container: (names.get(container, ""), container))
    ordered = []
    while pending:
        waiting = set(pending)
        ready = [container for container in pending if not needs.get(container, set()) & waiting]
        chosen = ready[0] if ready else pending[0]
        ordered.append(chosen)
        pending.remove(chosen)
    return ordered
