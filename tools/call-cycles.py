#!/usr/bin/env python3
"""call-cycles.py OBJ... — which source files call each other in a circle.

Reads the symbols of built object files (nm: what each defines, what it
uses), makes the graph "file A calls a function of file B", and prints its
cycles (strongly connected components of more than one file) with the
symbols that make each edge; then the same with data references (a kind's
ops table named by the files that look its handles up). Exit status 1 if
calls form a cycle. Used for the library's rule (docs/ARCHITECTURE.md, "The
library's seams"):

    tools/call-cycles.py build/obj/src/lib/*/*.o
"""
import subprocess, sys, os, itertools
objs = sys.argv[1:]
defs, uses = {}, {}
for o in objs:
    out = subprocess.run(['nm', o], capture_output=True, text=True).stdout
    name = os.path.relpath(o).replace('build/obj/', '').replace('.o', '.c')
    uses[name] = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in 'TDRB':
            defs[parts[2]] = (name, parts[1])
        elif len(parts) == 2 and parts[0] == 'U':
            uses[name].add(parts[1])
def graph(kinds):
    g = {n: set() for n in uses}
    for n, syms in uses.items():
        for s in syms:
            if s in defs and defs[s][1] in kinds and defs[s][0] != n:
                g[n].add(defs[s][0])
    return g
def sccs(g):
    index, low, st, on, res, c = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
        for w in g[v]:
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == v: break
            res.append(comp)
    for v in g:
        if v not in index: visit(v)
    return res
status = 0
for label, kinds in (('calls (functions)', 'T'), ('calls and data references', 'TDRB')):
    g = graph(kinds)
    cyc = [sorted(c) for c in sccs(g) if len(c) > 1]
    if kinds == 'T' and cyc:
        status = 1
    print(f'{label}: {len(cyc)} cycle(s)')
    for c in cyc:
        print('  ', ' <-> '.join(c))
        for a in c:
            for b in sorted(g[a]):
                if b in c:
                    syms = sorted(s for s in uses[a] if s in defs and defs[s][0] == b and defs[s][1] in kinds)
                    print(f'       {a} -> {b}: {", ".join(syms)}')
sys.exit(status)
