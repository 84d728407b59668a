"""Where a problem came from and what came of it, read from a run's latest Parquet snapshot.

`lineage(con, id)` walks `parent_id` up to the root (a seed, or a dataset problem) and
down to every problem derived from this one, and attaches each problem's solve rate per
round (attempts and correct answers of that round). It reads the snapshot, not the
store file, so it works while the run is live.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curriculum.records import normalize_question
from curriculum.report.summary import InspectError, has_table, open_snapshot
from curriculum.store.queries import ANCESTORS, DESCENDANTS

_COLUMNS = "id, parent_id, source, family, level, round_created, created_by, question, answer"


@dataclass
class Node:
    """One problem of a lineage with its solve rate per round: {round: (attempts, correct)}."""

    id: str
    parent_id: str | None
    source: str
    family: str
    level: int | None
    round_created: int
    created_by: str
    question: str
    answer: str
    solve: dict[int, tuple[int, int]] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    def rate(self, round: int) -> float | None:
        attempts, correct = self.solve.get(round, (0, 0))
        return correct / attempts if attempts else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parent_id": self.parent_id,
            "source": self.source,
            "family": self.family,
            "level": self.level,
            "round_created": self.round_created,
            "created_by": self.created_by,
            "question": self.question,
            "answer": self.answer,
            "solve_rate": {
                str(r): {"attempts": n, "correct": c, "rate": c / n} for r, (n, c) in sorted(self.solve.items())
            },
            "children": [child.to_dict() for child in self.children],
        }


@dataclass
class Provenance:
    """How a model-written problem came about (the calls table): the call that wrote it, the
    rationale it gave, the diagnosis it was aimed at and the vote that labelled it. A Generator's
    problem on a world without an oracle was written by a local model (no call) and labelled by vote."""

    call_id: str | None  # None: written by the Generator, not by a call (`endpoint` names it)
    node: str  # write (LLM Teacher), question (LLM synthesis) or generator
    template: str
    endpoint: str
    latency_s: float
    tokens: tuple[int | None, int | None]
    attempt: int
    rationale: str
    diagnosis: dict[str, Any] | None  # the Teacher's diagnose reply for the parent, that round
    label_calls: int
    label_errors: int
    answer_source: str
    vote_share: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "node": self.node,
            "template": self.template,
            "endpoint": self.endpoint,
            "latency_s": self.latency_s,
            "prompt_tokens": self.tokens[0],
            "completion_tokens": self.tokens[1],
            "attempt": self.attempt,
            "rationale": self.rationale,
            "diagnosis": self.diagnosis,
            "label_calls": self.label_calls,
            "label_errors": self.label_errors,
            "answer_source": self.answer_source,
            "vote_share": self.vote_share,
        }


@dataclass
class Lineage:
    problem: Node  # its `children` hold the descendant tree
    ancestors: list[Node]  # parent first, root last
    provenance: Provenance | None = None  # for a problem an LLM workflow wrote

    @property
    def root(self) -> Node:
        return self.ancestors[-1] if self.ancestors else self.problem

    def descendants(self) -> list[Node]:
        """Every derived problem, children first (breadth first)."""
        out, level = [], list(self.problem.children)
        while level:
            out.extend(level)
            level = [child for node in level for child in node.children]
        return out

    def to_dict(self) -> dict[str, Any]:
        problem = self.problem.to_dict()
        return {
            "problem": {k: v for k, v in problem.items() if k != "children"},
            "ancestors": [{k: v for k, v in a.to_dict().items() if k != "children"} for a in self.ancestors],
            "descendants": problem["children"],
            "root_source": self.root.source,
            "provenance": self.provenance.to_dict() if self.provenance else None,
        }


def resolve_id(con: Any, problem_id: str) -> str:
    """The full id for `problem_id` or a unique prefix of one."""
    rows = con.execute("SELECT id FROM problems WHERE starts_with(id, ?) ORDER BY id LIMIT 3", [problem_id]).fetchall()
    exact = [row[0] for row in rows if row[0] == problem_id]
    if exact:
        return exact[0]
    if not rows:
        raise InspectError(f"problem '{problem_id}' is not in the snapshot (ids look like p0123abcd...)")
    if len(rows) > 1:
        raise InspectError(f"problem id prefix '{problem_id}' is ambiguous ({', '.join(r[0] for r in rows)}, ...)")
    return rows[0][0]


def lineage(con: Any, problem_id: str) -> Lineage:
    """The lineage of one problem in the snapshot `con` reads (see `inspect.open_snapshot`)."""
    problem_id = resolve_id(con, problem_id)
    up = con.execute(
        f"""{ANCESTORS}
            SELECT {", ".join("p." + c.strip() for c in _COLUMNS.split(","))}
            FROM chain c JOIN problems p ON p.id = c.id ORDER BY c.depth""",
        [problem_id],
    ).fetchall()
    down = con.execute(
        f"""{DESCENDANTS}
            SELECT {", ".join("p." + c.strip() for c in _COLUMNS.split(","))}
            FROM tree t JOIN problems p ON p.id = t.id WHERE t.depth > 0 ORDER BY t.depth, p.round_created, p.id""",
        [problem_id],
    ).fetchall()
    nodes = {row[0]: Node(*row) for row in up + down}
    for pid, round_, attempts, correct in con.execute(
        """SELECT problem_id, round, count(*), count_if(correct) FROM attempts
           WHERE problem_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY ALL ORDER BY ALL""",
        [list(nodes)],
    ).fetchall():
        nodes[pid].solve[round_] = (attempts, correct)
    for row in down:  # parents come before children (ordered by depth)
        nodes[row[1]].children.append(nodes[row[0]])
    return Lineage(
        problem=nodes[problem_id],
        ancestors=[nodes[row[0]] for row in up[1:]],
        provenance=provenance(con, nodes[problem_id]),
    )


def provenance(con: Any, node: Node) -> Provenance | None:
    """The audited call that wrote `node` (None for a problem no LLM workflow wrote, or a snapshot
    without a calls table), with its rationale, the parent's diagnosis and the label votes."""

    if not has_table(con, "calls"):
        return None
    row = con.execute(
        """SELECT id, node, template, endpoint, latency_s, prompt_tokens, completion_tokens, attempt, parsed, round,
                  parent_id FROM calls
           WHERE list_contains(drafts, ?) AND node IN ('write', 'question') AND error = ''
           ORDER BY round, attempt LIMIT 1""",
        [node.id],
    ).fetchone()
    labels, label_errors = con.execute(
        "SELECT count(*), count_if(error <> '') FROM calls WHERE node = 'label' AND list_contains(drafts, ?)", [node.id]
    ).fetchone()
    source, share, version = con.execute(
        "SELECT answer_source, vote_share, model_version FROM problems WHERE id = ?", [node.id]
    ).fetchone()
    if row is None and node.source == "generator" and labels:  # its drafts were labelled by the Teacher's vote
        writer = f"{node.created_by} v{version}" if version is not None else node.created_by
        return Provenance(
            None, "generator", "", writer, 0.0, (None, None), 0, "", None, labels, label_errors, source, share
        )
    if row is None:
        return None
    call_id, step, template, endpoint, latency, prompt_tokens, completion_tokens, attempt, parsed, round_, parent = row
    diagnosis = con.execute(
        """SELECT parsed FROM calls WHERE node = 'diagnose' AND parent_id = ? AND round = ? AND error = ''
           ORDER BY attempt DESC LIMIT 1""",
        [parent, round_],
    ).fetchone()
    return Provenance(
        call_id,
        step,
        template,
        endpoint,
        latency,
        (prompt_tokens, completion_tokens),
        attempt,
        _rationale(parsed, node.question),
        json.loads(diagnosis[0]) if diagnosis else None,
        labels,
        label_errors,
        source,
        share,
    )


def _rationale(parsed: str, question: str) -> str:
    """The rationale the writing call gave for `question` (a write reply holds several problems)."""

    try:
        reply = json.loads(parsed)
    except ValueError:
        return ""
    items = reply.get("problems", [reply]) if isinstance(reply, dict) else []
    wanted = normalize_question(question)
    for item in items:
        if isinstance(item, dict) and normalize_question(str(item.get("question", ""))) == wanted:
            return str(item.get("rationale", ""))
    return ""


def load_lineage(run_dir: str | Path, problem_id: str) -> tuple[Lineage, str]:
    """(lineage, snapshot name) from the run's latest snapshot."""
    con, snapshot = open_snapshot(run_dir)
    try:
        return lineage(con, problem_id), snapshot
    finally:
        con.close()


def node_label(node: Node, rounds: list[int] | None = None, width: int = 60) -> str:
    """One line: id, source, round, level, question and the solve rate per round."""
    question = " ".join(node.question.split())
    if len(question) > width:
        question = question[: width - 3] + "..."
    level = f" L{node.level}" if node.level is not None else ""
    rates = (
        " ".join(f"r{r}:{c}/{n}" for r, (n, c) in sorted(node.solve.items()) if rounds is None or r in rounds)
        or "never attempted"
    )
    return f"{node.id} [{node.source} r{node.round_created}{level}] {question}  solve {rates}"
