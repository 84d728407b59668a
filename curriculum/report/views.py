"""Rich renderings of `inspect`, `lineage` and `eval` results (the data comes from their modules)."""

from __future__ import annotations

from typing import Any


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.0f}"


def inspect_views(summary: dict[str, Any]) -> list[Any]:
    """Tables: rounds with accuracy per level, problems by source and round, the learning band,
    the weakest concepts, Teacher/Generator acceptance."""
    from rich.table import Table

    views: list[Any] = []
    rounds = summary["rounds"]
    levels = sorted({lv for r in rounds for lv in r["eval"]["by_level"]}, key=int)
    table = Table(
        title=f"held-out accuracy % by level  ({summary['run_dir']}, {summary['snapshot']})", title_justify="left"
    )
    for name in ["round", "policy", *[f"L{lv}" for lv in levels], "all", "trained on (mean level)"]:
        table.add_column(name, justify="right")
    for r in rounds:
        by_level = r["eval"]["by_level"]
        mean_level = r.get("mean_level_attempted")
        table.add_row(
            str(r["round"]),
            f"v{r['policy_version']}",
            *[_pct(by_level.get(lv)) for lv in levels],
            _pct(r["eval"]["overall"]),
            "" if mean_level is None else f"{mean_level:.2f}",
        )
    views.append(table)

    validated = [r for r in rounds if r.get("validation")]
    if validated:
        levels = sorted({lv for r in validated for lv in r["validation"]["by_level"]}, key=int)
        table = Table(
            title="validation accuracy % by level (choose settings by these; report the held-out ones)",
            title_justify="left",
        )
        for name in ["round", *[f"L{lv}" for lv in levels], "all", "worst drop"]:
            table.add_column(name, justify="right")
        for r in validated:
            v = r["validation"]
            worst = v["worst_drop"]
            table.add_row(
                str(r["round"]),
                *[_pct(v["by_level"].get(lv)) for lv in levels],
                _pct(v["overall"]),
                "" if worst is None else _points(worst),
            )
        views.append(table)

    drops = [r for r in rounds if r.get("drop_from_base")]
    if drops:
        groups = list(dict.fromkeys(g for r in drops for g in r["drop_from_base"]))
        table = Table(
            title="retention: accuracy points lost since the base model (negative: gained)", title_justify="left"
        )
        for name in ["round", *groups, "worst", "worst so far"]:
            table.add_column(name, justify="right")
        for r in drops:
            table.add_row(
                str(r["round"]),
                *[_points(r["drop_from_base"].get(g)) for g in groups],
                _points(r["worst_drop"]),
                _points(r["worst_drop_so_far"]),
            )
        views.append(table)

    sources = sorted({s for r in rounds for s in r["problems_by_source"]})
    table = Table(title="problems added by source and round", title_justify="left")
    for name in ["round", *sources, "total"]:
        table.add_column(name, justify="right")
    for r in rounds:
        added = r["problems_by_source"]
        table.add_row(str(r["round"]), *[str(added.get(s, 0)) for s in sources], str(sum(added.values())))
    views.append(table)

    band = summary.get("band")
    if band:
        counts = band["counts"]
        table = Table(
            title=f"learning band now: solve rate in [{band['low']:g}, {band['high']:g}] over the last "
            f"{band['last_n_rounds']} round(s)",
            title_justify="left",
        )
        for name in ["below", "in band", "above", "never attempted", "in band by level"]:
            table.add_column(name, justify="right")
        by_level = ", ".join(f"L{lv} {n}" for lv, n in sorted(band["in_band_by_level"].items())) or "-"
        table.add_row(
            str(counts["below"]), str(counts["in_band"]), str(counts["above"]), str(counts["unattempted"]), by_level
        )
        views.append(table)

    weak = summary.get("weak_concepts")
    if weak:
        table = Table(title="weakest concepts (failure rate of recent attempts)", title_justify="left")
        for name in ["concept", "failure %", "attempts", "problems"]:
            table.add_column(name, justify="left" if name == "concept" else "right")
        for w in weak:
            table.add_row(w["concept"], _pct(w["failure_rate"]), str(w["attempts"]), str(w["problems"]))
        views.append(table)

    accept = summary.get("acceptance")
    if accept:
        table = Table(title="drafts: accepted and rejected", title_justify="left")
        for name in ["source", "accepted", "rejected", "acceptance %", "rejection reasons"]:
            table.add_column(name, justify="left" if name in ("source", "rejection reasons") else "right")
        for source, a in accept.items():
            reasons = ", ".join(f"{reason} {n}" for reason, n in a["reasons"].items()) or "-"
            table.add_row(source, str(a["accepted"]), str(a["rejected"]), _pct(a["rate"]), reasons)
        views.append(table)
    calls = summary.get("calls")
    if calls:
        table = Table(title="model calls of the LLM workflows (the store's calls table)", title_justify="left")
        for name in ["source", "step", "calls", "failed", "failure reasons", "mean s", "tokens in", "tokens out"]:
            table.add_column(name, justify="left" if name in ("source", "step", "failure reasons") else "right")
        for c in calls:
            reasons = ", ".join(f"{reason} {n}" for reason, n in c["error_reasons"].items()) or "-"
            table.add_row(
                c["source"],
                c["node"],
                str(c["calls"]),
                str(c["errors"]),
                reasons,
                f"{c['latency_s_mean']:.2f}",
                str(c["prompt_tokens"]),
                str(c["completion_tokens"]),
            )
        views.append(table)

    labels = summary.get("label_quality") or {}
    if labels.get("rounds") and (calls or any(r["model_labelled"] for r in labels["rounds"])):
        table = Table(
            title="label quality: model-voted answers against the world's oracle or a dataset's answers",
            title_justify="left",
        )
        by_reference = any(r.get("reference_checked") for r in labels["rounds"])
        names = ["round", "model-labelled", "checked", "agreement %", "mean vote share"]
        for name in names + (["reference votes", "agree with reference %"] if by_reference else []):
            table.add_column(name, justify="right")
        for r in labels["rounds"]:
            share = r["vote_share_mean"]
            cells = [
                str(r["round"]),
                str(r["model_labelled"]),
                str(r["checked"]),
                _pct(r["agreement"]) if r["checked"] else "no oracle",
                "" if share is None else f"{share:.2f}",
            ]
            if by_reference:  # a world without an oracle: the labeller against dataset answers
                checked = r.get("reference_checked", 0)
                cells += [str(checked), _pct(r["reference_agreement"]) if checked else ""]
            table.add_row(*cells)
        views.append(table)
    health = summary.get("health")
    if health:
        views.extend(health_tables(health))
    views.append("store: " + ", ".join(f"{k} {v}" for k, v in summary["store"].items()))
    return views


def health_tables(health: list[dict[str, Any]]) -> list[Any]:
    """The diversity of each round's new problems (curricula/health.py): distinct word n-grams,
    near-duplicates of earlier problems, coverage, length, and the low-diversity streak (LOW: long
    enough to warn); then, where answers were voted, their vote shares."""
    from rich.table import Table

    def number(h: dict[str, Any], key: str, fmt: str = "{:.0f}") -> str:
        return "" if h.get(key) is None else fmt.format(h[key])

    table = Table(
        title="health of each round's new problems (%: distinct word n-grams, near-duplicates of earlier ones)",
        title_justify="left",
    )
    for name in ["round", "new", "dist-2", "dist-3", "dup", "concepts", "levels", "tokens", "low rounds"]:
        table.add_column(name, justify="right")
    for h in health:
        streak = number(h, "low_diversity_rounds")
        table.add_row(
            str(h["round"]),
            number(h, "new_problems"),
            _pct(h.get("distinct_2")),
            _pct(h.get("distinct_3")),
            _pct(h.get("near_duplicate_rate")),
            number(h, "concepts"),
            number(h, "levels"),
            number(h, "mean_tokens", "{:.1f}"),
            f"{streak} LOW" if h.get("low_diversity") else streak,
        )
    tables = [table]
    voted = [h for h in health if "vote_share_mean" in h]
    if voted:
        table = Table(title="vote shares of the new problems' model-labelled answers", title_justify="left")
        for name in ["round", "mean", "p10", "weak %"]:
            table.add_column(name, justify="right")
        for h in voted:
            table.add_row(
                str(h["round"]),
                number(h, "vote_share_mean", "{:.2f}"),
                number(h, "vote_share_p10", "{:.2f}"),
                _pct(h.get("vote_share_weak")),
            )
        tables.append(table)
    return tables


def lineage_tree(lineage: Any) -> Any:
    """The chain from the root down to the problem (highlighted), then its descendants."""
    from rich.markup import escape
    from rich.tree import Tree

    from curriculum.report.lineage import node_label

    chain = [*reversed(lineage.ancestors), lineage.problem]
    tree = Tree(escape(node_label(chain[0])) if len(chain) > 1 else f"[bold]{escape(node_label(chain[0]))}[/bold]")
    branch = tree
    for node in chain[1:]:
        label = escape(node_label(node))
        branch = branch.add(f"[bold]{label}[/bold]" if node is lineage.problem else label)

    def grow(parent_branch: Any, node: Any) -> None:
        for child in node.children:
            grow(parent_branch.add(escape(node_label(child))), child)

    grow(branch, lineage.problem)
    made = lineage.provenance
    if made is not None and made.call_id is None:  # the Generator wrote it, the Teacher's labeller voted
        note = tree.add(f"[dim]written by {escape(made.endpoint)} (the Generator's model)[/dim]")
    elif made is not None:  # how an LLM workflow wrote it
        prompt_tokens, completion_tokens = made.tokens
        tokens = f", {prompt_tokens}+{completion_tokens} tokens" if prompt_tokens is not None else ""
        note = tree.add(
            f"[dim]written by call {made.call_id} ({made.node}, {escape(made.template)}, "
            f"{made.latency_s:.2f} s{tokens}, try {made.attempt}) at {escape(made.endpoint)}[/dim]"
        )
    if made is not None:
        if made.diagnosis:
            note.add(
                escape(f"diagnosis: {made.diagnosis.get('error', '')} (concept: {made.diagnosis.get('concept', '')})")
            )
        if made.rationale:
            note.add(escape(f"rationale: {made.rationale}"))
        share = "" if made.vote_share is None else f", vote share {made.vote_share:.2f}"
        note.add(
            f"answer: {made.answer_source}{share} from {made.label_calls} label call(s)"
            + (f", {made.label_errors} failed" if made.label_errors else "")
        )
    return tree


def eval_table(summary: dict[str, Any]) -> Any:
    from rich.table import Table

    ks = [key for key in summary if key.startswith("pass@")]
    settings = summary["settings"]
    table = Table(
        title=f"{summary['dataset']['name']}: {summary['dataset']['rows']} problems, "
        f"{settings['samples']} sample(s) each, temperature {settings['temperature']:g}, "
        f"answers read by {settings['extraction']}",
        title_justify="left",
    )
    for name in ["group", "problems", *[f"{k} %" for k in ks], "mean tokens"]:
        table.add_column(name, justify="left" if name == "group" else "right")

    def row(name: str, scores: dict[str, Any]) -> None:
        table.add_row(
            name, str(int(scores["problems"])), *[f"{100 * scores[k]:.1f}" for k in ks], f"{scores['mean_tokens']:.1f}"
        )

    row("all", summary)
    for rule, scores in summary.get("other_extractions", {}).items():  # the same completions, read otherwise
        row(f"all, read by {rule}", scores)
    for group in ("by_level", "by_subject"):
        for value, scores in summary[group].items():
            row(("level " if group == "by_level" else "") + value, scores)
    return table


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"
