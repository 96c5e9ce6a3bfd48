#!/usr/bin/env python3
"""The side-by-side table from one `bench/side_by_side.sh` results directory.

Reads orm.jsonl / orm-again.jsonl (`demo bench --json`), seaorm.json and django.json
(the peers' own result files), server-log.txt (auto_explain entries of the floor pass),
machine.txt and md5-*.txt, and prints markdown. Standard library only.
"""

import json
import re
import statistics
import sys
from pathlib import Path

# Each comparable case: our workload name, and the peers' rows that do the same work
# (the fastest of them is the peer's number; the table names which one it was).
CASES = [
    {
        "key": "list",
        "orm": "list_some + JSON",
        "seaorm": [
            "list_some find_also_related -> JSON",
            "list_some naive -> JSON",
        ],
        "django": [
            "list_some select_related (DRF -> JSON)",
            "list_some naive (DRF -> JSON)",
        ],
        "django_sql": "list_some select_related: same SQL, bare psycopg",
        "bytes": 28_590,
    },
    {
        "key": "threads",
        "orm": "threads page + JSON",
        "seaorm": [
            "threads page LoaderTrait load_many + load_one_ex -> JSON",
            "threads page entity loader load().with((message, person)) -> JSON",
        ],
        "django": ["threads page prefetch_related (DRF, paginated -> JSON)"],
        "django_sql": "threads page prefetch: same SQL, bare psycopg",
        "bytes": 2_865_382,
    },
]

# The targets for these cases: (case key, label, measured(value dict), goal text,
# predicate).
TARGETS = [
    ("list", "orm / hand-written diesel", "diesel_ratio", "<= 1.10", lambda v: v <= 1.10),
    ("list", "SeaORM / orm", "seaorm_ratio", ">= 1.0 (at least as fast)", lambda v: v >= 1.0),
    ("list", "orm / server floor", "floor_ratio", "<= 1.2", lambda v: v <= 1.2),
    ("threads", "orm / hand-written diesel", "diesel_ratio", "<= 1.10", lambda v: v <= 1.10),
    ("threads", "SeaORM / orm", "seaorm_ratio", ">= 2", lambda v: v >= 2.0),
    ("threads", "Django / orm", "django_ratio", ">= 25", lambda v: v >= 25.0),
    ("threads", "orm / server floor", "floor_ratio", "<= 1.5", lambda v: v <= 1.5),
]

# What each statement we send is, by its text (both our statements and the hand-written
# diesel ones; they differ in parentheses and in binding `deleted` or not).
STATEMENT_KINDS = [
    ("threads", "count", re.compile(r'^SELECT COUNT\(\*\) FROM "weave_thread"', re.S)),
    ("threads", "page of threads", re.compile(r'^SELECT .* FROM "weave_thread" .*LIMIT', re.S)),
    # The JOIN-shaped page ("senders joined") is measured too, but not compared.
    ("threads_joined", "their messages JOIN senders", re.compile(r'(?=.*"weave_message"\."thread_id" = ANY)(?=.*JOIN \(?"weave_person")', re.S)),
    ("threads", "their messages", re.compile(r'"weave_message"\."thread_id" = ANY', re.S)),
    ("threads", "their senders", re.compile(r'^SELECT .* FROM "weave_person" WHERE .*"weave_person"\."id" = ANY', re.S)),
    # Joined then limited, or (orm slices before joining) a limited derived table joined.
    ("list", "newest 100 messages + senders", re.compile(r'(?=.*INNER JOIN \(?"weave_person")(?=.*LIMIT)', re.S)),
]

ENTRY = re.compile(r"^\S+ \S+ \S+ \[\d+\] \S+@(\S+) LOG:  duration: ([0-9.]+) ms  plan:$")
EXECUTE = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] \S+@(\S+) LOG:  duration: [0-9.]+ ms  execute [^:]*: (.*)$")
DETAIL = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] \S+@\S+ DETAIL:  parameters: (.*)$")
# The server writes each parameter as an SQL literal: '...' with quotes doubled, or NULL.
PARAM = re.compile(r"\$(\d+) = ('(?:[^']|'')*'|NULL)")
EXPLAIN_REPEAT = 7


def fmt(v, digits=3):
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}" if v < 1 else f"{v:.1f}"


def fmt_ratio(v):
    return "—" if v is None else f"{v:.2f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def read_jsonl(path):
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            row = json.loads(line)
            out[row["workload"]] = row
    return out


def read_doc(path):
    if not path.exists():
        return {}
    doc = json.loads(path.read_text())
    return {row["name"]: row for row in doc.get("rows", [])}


def best(rows, names):
    found = [(rows[n]["median_ms"], n, rows[n]) for n in names if n in rows]
    if not found:
        return None, None, None
    return min(found, key=lambda x: x[0])


def floor_entries(path, database="peer_orm"):
    """(duration ms, query text) of every auto_explain entry of `database`."""
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = ENTRY.match(lines[i])
        i += 1
        if not m:
            continue
        body = []
        while i < len(lines) and lines[i].startswith("\t"):
            body.append(lines[i])
            i += 1
        if m.group(1) != database:
            continue
        try:
            doc = json.loads("\n".join(body))
        except json.JSONDecodeError:
            continue
        out.append((float(m.group(2)), doc.get("Query Text", "")))
    return out


def executed_statements(path, database="peer_orm"):
    """{statement text: its parameters as SQL literals} from the server log's `execute`
    entries (log_min_duration_statement = 0), the last execution of each text."""
    if not path.exists():
        return {}
    lines = path.read_text(errors="replace").splitlines()
    pending = {}
    out = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        m = EXECUTE.match(line)
        if m and m.group(2) == database:
            text = [m.group(3)]
            while i < len(lines) and lines[i].startswith("\t"):
                text.append(lines[i][1:])
                i += 1
            pending[m.group(1)] = "\n".join(text)
            out["\n".join(text)] = []
            continue
        d = DETAIL.match(line)
        if d and d.group(1) in pending:
            out[pending.pop(d.group(1))] = [v for _, v in sorted(
                PARAM.findall(d.group(2)), key=lambda kv: int(kv[0]))]
    return out


def explain_replay(out_dir):
    """EXPLAIN (ANALYZE, TIMING OFF) of every statement our pages sent, with the
    parameters they were sent with, EXPLAIN_REPEAT times each, through psql: planning +
    execution time as the server reports them (rows are neither converted nor sent).
    Writes explain.json."""
    import subprocess

    results = []
    for text, params in executed_statements(out_dir / "server-log.txt").items():
        case, kind = classify(text)
        if case is None:
            continue
        args = f"({', '.join(params)})" if params else ""
        script = ["\\set ON_ERROR_STOP 1", f"PREPARE floor_q AS {text};"]
        for _ in range(EXPLAIN_REPEAT):
            script += ["\\echo @@@", f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) EXECUTE floor_q{args};"]
        done = subprocess.run(
            ["psql", "-d", "peer_orm", "-At", "-f", "-"],
            input="\n".join(script) + "\n", capture_output=True, text=True, check=True,
        )
        times = []
        for chunk in done.stdout.split("@@@")[1:]:
            doc = json.loads(chunk)[0]
            times.append(doc["Planning Time"] + doc["Execution Time"])
        results.append({"case": case, "kind": kind, "text": text, "server_ms": times})
    (out_dir / "explain.json").write_text(json.dumps(results, indent=1))


def side(text):
    """Whose statement it is. The hand-written diesel side's joins come out as
    `FROM ("a" INNER JOIN "b" ON (...))`, it binds `deleted`, and its filters have one
    pair of parentheses (`WHERE ("t"."c" = ANY($1))`); orm writes joins without the
    parentheses, `deleted = false` as a literal, and wraps each filter once more
    (`WHERE (("t"."c" = ANY($1)))`)."""
    if 'ON ("' in text or re.search(r'"deleted" = \$\d', text):
        return "diesel"
    if re.search(r'WHERE \("[a-z_]+"\."[a-z_]+" = ANY', text):
        return "diesel"
    return "orm"


def classify(text):
    for case, kind, pattern in STATEMENT_KINDS:
        if pattern.search(text):
            return case, kind
    return None, None


def sum_of_medians(per_kind):
    """A case's figure: the sum over its statement kinds of each kind's median."""
    out = {}
    for (case, _), times in per_kind.items():
        out[case] = out.get(case, 0.0) + statistics.median(times)
    return out


def read_more(path):
    """orm-more.jsonl (`demo bench --json --sections counts,stream,writes`): count rows
    by strategy, stream rows by mode, write rows by workload."""
    counts, streams, writes = {}, {}, {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            row = json.loads(line)
            if "strategy" in row:
                counts[row["strategy"]] = row
            elif "stream" in row:
                streams[row["stream"]] = row
            elif "workload" in row:
                writes[row["workload"]] = row
    return counts, streams, writes


def read_stream(path):
    """A peer's streaming entries by their mode text."""
    if not path.exists():
        return {}
    doc = json.loads(path.read_text())
    return {e["mode"]: e for e in doc.get("stream", [])}


def pick(rows, prefix):
    """The fastest row whose name starts with `prefix`: (median, name, row)."""
    found = [(r["median_ms"], n, r) for n, r in rows.items()
             if n.startswith(prefix) and "same SQL" not in n and "same statements" not in n
             and not r.get("raw")]
    return min(found, key=lambda x: x[0]) if found else (None, None, None)


MORE_TARGETS = {
    # case: (peer, label, goal, predicate on peer / orm)
    "stream": [("seaorm", "SeaORM / orm", ">= 1 (at least as fast)", lambda v: v >= 1.0),
               ("django", "Django / orm", ">= 10", lambda v: v >= 10.0)],
    "bulk_create": [("seaorm", "SeaORM / orm", "> 1 (faster)", lambda v: v > 1.0),
                    ("django", "Django / orm", ">= 2.5", lambda v: v >= 2.5)],
    "bulk_update": [("django", "Django / orm", ">= 20", lambda v: v >= 20.0)],
}


def second_window(out_dir):
    """The counts, streaming and writes table, when the second window ran."""
    counts, streams, writes = read_more(out_dir / "orm-more.jsonl")
    if not (counts or streams or writes):
        return
    seaorm = read_doc(out_dir / "seaorm-more.json")
    django = read_doc(out_dir / "django-more.json")
    s_stream = read_stream(out_dir / "seaorm-more.json")
    d_stream = read_stream(out_dir / "django-more.json")
    p = print
    p("### Counts, streaming and writes (second window)")
    p()
    p(
        "Same rules: medians in ms, each side's own harness, committed writes undone "
        "outside the timing (orm: `demo bench --sections counts,stream,writes`; rows built "
        "before the timer; new rows deleted, texts set back, VACUUM). Streaming: each run "
        "a fresh process, peak RSS = VmHWM."
    )
    p()
    p("| case | orm | hand-written diesel | SeaORM (its fastest ORM way) | Django (its fastest way) | SeaORM / orm | Django / orm |")
    p("|---|---:|---:|---:|---:|---:|---:|")
    results = {}

    def row(label, key, ours, diesel, s, d):
        s_ms, s_name, _ = s
        d_ms, d_name, _ = d
        sr, dr = ratio(s_ms, ours), ratio(d_ms, ours)
        results[key] = {"seaorm": sr, "django": dr}
        p(
            f"| {label} | {fmt(ours)} | {fmt(diesel)} | {fmt(s_ms)}"
            f"{' (' + s_name + ')' if s_name else ''} | {fmt(d_ms)}"
            f"{' (' + d_name + ')' if d_name else ''} | {fmt_ratio(sr)} | {fmt_ratio(dr)} |"
        )

    exact = counts.get("exact")
    row("exact count of live messages", "count", exact and exact["ms"], None,
        pick(seaorm, "count non-deleted messages"), pick(django, "count exact"))
    for ours_name, d_prefix in (("planner estimate", "count planner estimate"),
                                ("table statistics (whole table)", "count pg_class.reltuples"),
                                ("TABLESAMPLE BERNOULLI 10%", "count TABLESAMPLE BERNOULLI")):
        c = counts.get(ours_name)
        row(f"count: {ours_name}", ours_name, c and c["ms"], None, (None, None, None), pick(django, d_prefix))
    o_stream, o_all, d_all = streams.get("OrmStream"), streams.get("OrmAll"), streams.get("DieselAll")
    s_st = next((e for e in s_stream.values() if e.get("key") == "stream"), None)
    d_it = next((e for m, e in d_stream.items() if ".iterator(" in m), None)
    row(
        f"stream all {o_stream['rows']:,} messages" if o_stream else "stream all messages",
        "stream", o_stream and o_stream["ms"], d_all and d_all["ms"],
        (s_st and s_st["median_ms"], "stream()", s_st), (d_it and d_it["median_ms"], ".iterator()", d_it),
    )
    mem = lambda e, k: f"{e[k]:.1f}" if e and e.get(k) is not None else "—"
    b_ins, b_copy = writes.get("bulk_create 100k (chunked INSERT)"), writes.get("bulk_create 100k (COPY on PostgreSQL)")
    best_ours = min([w for w in (b_ins, b_copy) if w], key=lambda w: w["ours_ms"], default=None)
    row("bulk_create 100,000 messages (orm: " + ("COPY" if best_ours is b_copy else "chunked INSERT") + ")",
        "bulk_create", best_ours and best_ours["ours_ms"], best_ours and best_ours["diesel_ms"],
        pick(seaorm, "insert_many 100000 messages, chunks"), pick(django, "bulk_create 100,000"))
    if b_ins and b_copy:
        row("bulk_create 100,000 messages (orm: chunked INSERT)", "bulk_create_insert",
            b_ins["ours_ms"], b_ins["diesel_ms"],
            pick(seaorm, "insert_many 100000 messages, chunks"), pick(django, "bulk_create 100,000"))
    up = writes.get("bulk_update 10k")
    row("bulk_update 10,000 texts", "bulk_update", up and up["ours_ms"], up and up["diesel_ms"],
        pick(seaorm, "update 10000 texts: update_many"), pick(django, "bulk_update text of 10,000"))
    p()
    if o_stream:
        p(
            f"Peak RSS while streaming (MiB): orm `stream()` {mem(o_stream, 'peak_mib')}, orm `all()` "
            f"{mem(o_all, 'peak_mib')}, hand-written diesel `load` {mem(d_all, 'peak_mib')}; SeaORM "
            f"`stream()` {mem(s_st, 'peak_rss_mib')}; Django `.iterator()` {mem(d_it, 'peak_rss_mib')}."
        )
    raw = pick(seaorm, "update 10000 texts: raw UPDATE")
    if raw[0] is not None and up:
        p(
            f"Hand-written `UPDATE ... FROM UNNEST`: {fmt(up['diesel_ms'])} (diesel, the orm / diesel "
            f"column) and {fmt(raw[0])} (SeaORM's `execute_raw`); orm / diesel "
            f"{fmt_ratio(ratio(up['ours_ms'], up['diesel_ms']))} (target <= 1.5)."
        )
    p()
    p("| case | target | goal | measured | met |")
    p("|---|---|---|---:|---|")
    for key, goals in MORE_TARGETS.items():
        for peer, label, goal, pred in goals:
            v = results.get(key, {}).get(peer)
            met = "—" if v is None else ("yes" if pred(v) else "**no**")
            p(f"| {key} | {label} | {goal} | {fmt_ratio(v)} | {met} |")
    if up:
        v = ratio(up["ours_ms"], up["diesel_ms"])
        p(f"| bulk_update | orm / hand-written UNNEST | <= 1.5 | {fmt_ratio(v)} | {'yes' if v is not None and v <= 1.5 else '**no**'} |")
    if o_stream:
        p(f"| stream | orm peak RSS, MiB ({o_stream['rows']:,} rows) | <= 32 for 1,000,000 | {mem(o_stream, 'peak_mib')} | see `demo bench --sections stream` on 1M |")
    p()


def main():
    if sys.argv[1] == "--explain":
        explain_replay(Path(sys.argv[2]))
        return
    out_dir = Path(sys.argv[1])
    orm = read_jsonl(out_dir / "orm.jsonl")
    orm_again = read_jsonl(out_dir / "orm-again.jsonl")
    seaorm = read_doc(out_dir / "seaorm.json")
    django = read_doc(out_dir / "django.json")
    machine = {}
    if (out_dir / "machine.txt").exists():
        for line in (out_dir / "machine.txt").read_text().splitlines():
            k, _, v = line.partition("=")
            machine[k] = v

    # The floor (EXPLAIN ANALYZE of our statements with their parameters) and, from the
    # auto_explain entries, the server's time including converting and sending the rows.
    explained = []
    if (out_dir / "explain.json").exists():
        explained = json.loads((out_dir / "explain.json").read_text())
    per_kind = {}
    for e in explained:
        # Classified again here, so a report made later follows STATEMENT_KINDS.
        e["case"], e["kind"] = classify(e["text"])
        if e["case"] is not None and side(e["text"]) == "orm":
            per_kind.setdefault((e["case"], e["kind"]), []).extend(e["server_ms"])
    floors = sum_of_medians(per_kind)
    sent_kind, sent_text = {}, {}
    unknown = set()
    for ms, text in floor_entries(out_dir / "server-log.txt"):
        case, kind = classify(text)
        if case is not None:
            if side(text) == "orm":
                sent_kind.setdefault((case, kind), []).append(ms)
            sent_text.setdefault(text, []).append(ms)
        elif '"weave_' in text and not text.startswith("SELECT 1 "):
            unknown.add(text)
    sending = sum_of_medians(sent_kind)

    p = print
    p(f"## orm side by side with SeaORM and Django + DRF ({out_dir.name})")
    p()
    p(
        f"Machine: {machine.get('nproc', '?')} vCPUs ({machine.get('cpu', '?')}), "
        f"{machine.get('mem', '?')}, Linux {machine.get('kernel', '?')}; PostgreSQL "
        f"{machine.get('postgres', '?')}; {machine.get('rustc', '?')}; "
        f"{machine.get('python', '?')}. Load average (1, 5, 15 min) at the start "
        f"{machine.get('loadavg', '?')}, at the end {machine.get('loadavg_end', '?')}. "
        f"All three over TCP to 127.0.0.1 with sslmode={machine.get('sslmode', '?')}; SeaORM's "
        f"test_before_acquire ping {machine.get('seaorm_ping', '?')}."
    )
    md5 = {}
    for f in sorted(out_dir.glob("md5-*.txt")):
        md5[f.stem[4:]] = f.read_text().strip()
    same = len(set(md5.values())) == 1 and md5
    p(
        "Dataset: the Django peer's loader, 1,000 persons, 1,000 threads, 100,000 messages; "
        + ("row md5s identical in " + ", ".join(sorted(md5)) + "." if same else "md5s NOT compared or different.")
    )
    p()
    p(
        "Medians in ms. orm: `demo bench`, orm and hand-written diesel alternating, once "
        "before the peers (orm / diesel and orm / floor use this pass; the floor is measured "
        "right after it) and once after them; SeaORM / orm and Django / orm divide by the "
        "mean of the two passes. Peers: their own harnesses; the fastest of their variants "
        "doing the same work (named below). Server floor: planning + execution time of the statements our page sends, "
        "with the parameters it sent, from EXPLAIN (ANALYZE, TIMING OFF): median per "
        "statement, summed. Server incl. sending: the executor time auto_explain logs for "
        "the same statements as the bench runs them, which also covers converting the rows "
        "and writing them to the client."
    )
    p()
    p("| case | orm | orm after the peers | hand-written diesel | orm / diesel | SeaORM | Django + DRF | SeaORM / orm | Django / orm | server floor | orm / floor | server incl. sending | JSON bytes (orm, SeaORM, Django) |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    values = {}
    notes = []
    for case in CASES:
        o = orm.get(case["orm"])
        again = orm_again.get(case["orm"])
        ours = o["ours_ms"] if o else None
        ours2 = again["ours_ms"] if again else None
        # Against the peers: the mean of orm's two passes, one before and one after them.
        ours_mean = statistics.mean([x for x in (ours, ours2) if x is not None]) if o else None
        diesel = o["diesel_ms"] if o else None
        s_ms, s_name, s_row = best(seaorm, case["seaorm"])
        d_ms, d_name, d_row = best(django, case["django"])
        floor = floors.get(case["key"])
        v = {
            "orm": ours,
            "diesel_ratio": ratio(ours, diesel),
            "seaorm_ratio": ratio(s_ms, ours_mean),
            "django_ratio": ratio(d_ms, ours_mean),
            "floor_ratio": ratio(ours, floor),
        }
        values[case["key"]] = v
        sizes = [
            str(o["output"]) if o else "—",
            str(s_row.get("json_bytes", "—")) if s_row else "—",
            str(d_row.get("json_bytes", "—")) if d_row else "—",
        ]
        check = "same" if len(set(sizes)) == 1 and sizes[0] == str(case["bytes"]) else "DIFFER"
        p(
            f"| {case['orm']} | {fmt(ours)} | {fmt(ours2)} | {fmt(diesel)} | {fmt_ratio(v['diesel_ratio'])} | "
            f"{fmt(s_ms)} | {fmt(d_ms)} | {fmt_ratio(v['seaorm_ratio'])} | {fmt_ratio(v['django_ratio'])} | "
            f"{fmt(floor)} | {fmt_ratio(v['floor_ratio'])} | {fmt(sending.get(case['key']))} | "
            f"{' / '.join(sizes)} ({check}) |"
        )
        if o:
            notes.append(
                f"- {case['orm']}: orm {o['runs']} runs, spread {fmt(o['ours_spread'][0])}–"
                f"{fmt(o['ours_spread'][1])}; diesel spread {fmt(o['diesel_spread'][0])}–"
                f"{fmt(o['diesel_spread'][1])}"
                + (f"; after the peers: orm {fmt(again['ours_ms'])}, diesel "
                   f"{fmt(again['diesel_ms'])} (orm / diesel {fmt_ratio(again['ratio'])})"
                   if again else "")
            )
        if s_row:
            notes.append(
                f"- SeaORM: `{s_name}`, {s_row['runs']} runs, min {fmt(s_row['min_ms'])}, "
                f"{s_row['queries']} statements"
            )
        if d_row:
            notes.append(
                f"- Django: `{d_name}`, {d_row['runs']} runs, min {fmt(d_row['min_ms'])}, "
                f"{d_row['queries']} queries"
            )
        dsql = django.get(case["django_sql"])
        if dsql and "server_median_ms" in dsql:
            notes.append(
                f"- Django's own SQL for it: server planning + execution "
                f"{fmt(dsql['server_median_ms'])} (EXPLAIN ANALYZE, TIMING OFF); replayed on a "
                f"bare psycopg connection {fmt(dsql['median_ms'])}"
            )
    p()
    p("\n".join(notes))
    p()
    p("### Targets (issue 8)")
    p()
    p("| case | target | goal | measured | met |")
    p("|---|---|---|---:|---|")
    for key, label, field, goal, pred in TARGETS:
        v = values.get(key, {}).get(field)
        met = "—" if v is None else ("yes" if pred(v) else "**no**")
        name = next(c["orm"] for c in CASES if c["key"] == key)
        p(f"| {name} | {label} | {goal} | {fmt_ratio(v)} | {met} |")
    p()
    second_window(out_dir)
    if not explained and not sent_text:
        p("No floor: the server log was not readable (see PG_LOG in bench/side_by_side.sh).")
        return
    p("### The floor, statement by statement (ms)")
    p()
    p("| # | case | statement | side | EXPLAIN ANALYZE runs | planning + execution median | min | auto_explain (incl. sending) median | runs |")
    p("|---:|---|---|---|---:|---:|---:|---:|---:|")
    texts = sorted({(e["case"], e["kind"], e["text"]) for e in explained if e["case"] is not None}
                   | {(*classify(t), t) for t in sent_text})
    by_text = {}
    for e in explained:
        by_text.setdefault(e["text"], []).extend(e["server_ms"])
    for n, (case, kind, text) in enumerate(texts, 1):
        ex = by_text.get(text, [])
        se = sent_text.get(text, [])
        p(
            f"| {n} | {case} | {kind} | {side(text)} | {len(ex)} | {fmt(statistics.median(ex)) if ex else '—'} | "
            f"{fmt(min(ex)) if ex else '—'} | {fmt(statistics.median(se)) if se else '—'} | {len(se)} |"
        )
    p()
    p("<details><summary>the statements</summary>")
    p()
    for n, (_, _, text) in enumerate(texts, 1):
        p(f"{n}. `{re.sub(chr(92) + 's+', ' ', text)}`")
    p()
    p("</details>")
    p()
    p(
        "Both sides' statements are listed; the floor columns of the main table count "
        "orm's only (told apart by their text: diesel parenthesises joins and binds "
        "`deleted`, orm writes it as a literal)."
    )
    if unknown:
        p()
        p(
            "**Not in the floor** (statements of the pass that STATEMENT_KINDS in "
            "bench/side_by_side_report.py does not recognise; the floor is incomplete):"
        )
        for text in sorted(unknown):
            p(f"- `{re.sub(chr(92) + 's+', ' ', text)}`")


if __name__ == "__main__":
    main()
