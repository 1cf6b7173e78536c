#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Compare a probe plan (expect.py matrix) with what the probes saw (probe.py), and optionally
with the NFLOG records captured meanwhile (nflog.py output). Prints one verdict per line for
the shell to count: "PASS<TAB>WHAT" or "FAIL<TAB>WHAT<TAB>DETAIL|DETAIL...".

  judge.py LABEL PLAN RESULTS [--audit] [--nflog RECORDS]

Enforce: an allowed pair must connect; a denied one must not (timeout: dropped, or refused).
Audit (--audit): every pair must connect. With --nflog, every denied pair must have been logged
by the rule the plan names, with prefix "ceredis:RULE " (the destination as the ruleset saw
it, after a published port's DNAT)."""
import argparse
import collections

MAX_DETAIL = 12


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("label")
    ap.add_argument("plan")
    ap.add_argument("results")
    ap.add_argument("--audit", action="store_true")
    ap.add_argument("--nflog")
    args = ap.parse_args()
    plan = []
    with open(args.plan) as f:
        for line in f:
            srcns, ident, src, dst, port, exp, rule, sdst, sport, what = line.split()
            plan.append((srcns, ident, src, exp, rule, sdst, int(sport), what.replace("_", " ")))
    got = {}
    with open(args.results) as f:
        for line in f:
            ident, res = line.split()
            got[ident] = res
    groups = collections.OrderedDict()
    for row in plan:
        groups.setdefault(row[0], []).append(row)
    for srcns, rows in groups.items():
        bad = []
        n_allow = n_deny = 0
        for _, ident, _, exp, rule, _, _, what in rows:
            res = got.get(ident, "missing")
            if exp == "allow" or args.audit:
                n_allow += 1
                good = res == "ok"
            else:
                n_deny += 1
                good = res in ("timeout", "refused")
            if not good:
                bad.append("%s: expected %s%s, got %s" % (
                    what, exp, "" if exp == "allow" else " (" + rule + ")", res))
        what = "%s: from %s, %d connections %s" % (
            args.label, srcns, len(rows),
            "all pass (audit)" if args.audit else "%d pass, %d blocked" % (n_allow, n_deny))
        if bad:
            more = ["... and %d more" % (len(bad) - MAX_DETAIL)] if len(bad) > MAX_DETAIL else []
            print("FAIL\t%s\t%s" % (what, "|".join(bad[:MAX_DETAIL] + more)))
        else:
            print("PASS\t%s" % what)
    if args.nflog:
        seen = set()
        with open(args.nflog) as f:
            for line in f:
                prefix, src, dst, proto, dport = line.rstrip("\n").split("\t")
                seen.add((prefix, src, dst, int(dport)))
        bad = []
        denied = [r for r in plan if r[3] == "deny"]
        for _, _, src, _, rule, sdst, sport, what in denied:
            if ("ceredis:%s " % rule, src, sdst, sport) not in seen:
                others = sorted({p for p, s, d, dp in seen if (s, d, dp) == (src, sdst, sport)})
                bad.append("%s: no NFLOG record 'ceredis:%s '%s" % (
                    what, rule, " (logged as %s)" % others if others else ""))
        what = "%s: %d denied connections logged with their rule" % (args.label, len(denied))
        if bad:
            more = ["... and %d more" % (len(bad) - MAX_DETAIL)] if len(bad) > MAX_DETAIL else []
            print("FAIL\t%s\t%s" % (what, "|".join(bad[:MAX_DETAIL] + more)))
        else:
            print("PASS\t%s" % what)


if __name__ == "__main__":
    main()
