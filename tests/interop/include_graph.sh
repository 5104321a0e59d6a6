#!/usr/bin/env bash
# include_graph.sh - the source tree's include graph has no cycle of more
# than two modules (a module is a .c file and the .h of the same name); a
# header declares only its own module's functions, so a cycle would mean a
# header that serves several files.  The scan is shown to find a cycle
# planted in a copy.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
SRC=${VMDKIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
need python3
mk_tmpdir

# cycles TREE: each cycle of more than two modules under TREE/src, one per line
cycles() {
    python3 - "$1" <<'PY'
import os, re, sys
root = sys.argv[1]
src, inc_dir = os.path.join(root, "src"), os.path.join(root, "include")
edges = {}
for d, _, names in os.walk(src):
    for n in names:
        if not n.endswith((".c", ".h")):
            continue
        p = os.path.join(d, n)
        me = os.path.splitext(p)[0]
        for line in open(p, errors="replace"):
            m = re.match(r'\s*#\s*include\s*"([^"]+)"', line)
            if not m:
                continue
            for base in (d, os.path.join(src, "lib"), inc_dir):
                q = os.path.normpath(os.path.join(base, m.group(1)))
                if os.path.exists(q):
                    other = os.path.splitext(q)[0]
                    if other != me and os.path.exists(other + ".c"):
                        edges.setdefault(me, set()).add(other)
                    break
# strongly connected components (iterative Tarjan)
index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
for start in list(edges):
    if start in index:
        continue
    work = [(start, iter(sorted(edges.get(start, ()))))]
    index[start] = low[start] = counter[0]; counter[0] += 1
    stack.append(start); on.add(start)
    while work:
        v, it = work[-1]
        w = next(it, None)
        if w is not None:
            if w not in index:
                index[w] = low[w] = counter[0]; counter[0] += 1
                stack.append(w); on.add(w)
                work.append((w, iter(sorted(edges.get(w, ())))))
            elif w in on:
                low[v] = min(low[v], index[w])
            continue
        work.pop()
        if work:
            low[work[-1][0]] = min(low[work[-1][0]], low[v])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(os.path.relpath(w, src))
                if w == v:
                    break
            if len(comp) > 2:
                out.append(" ".join(sorted(comp)))
print("\n".join(sorted(out)))
PY
}

say "--- the tree"
assert_eq "no include cycle of more than two modules under src/" "" "$(cycles "$SRC")"

say "--- the scan finds a planted cycle"
mkdir -p copy
cp -r "$SRC/src" "$SRC/include" copy/
# plant path -> create -> copy -> path
printf '#include "create.h"\n' >>copy/src/lib/path.h
printf '#include "copy.h"\n' >>copy/src/lib/create.h
printf '#include "path.h"\n' >>copy/src/lib/copy.h
found=$(cycles "$PWD/copy")
assert_true "the planted cycle path -> create -> copy -> path is reported ($found)" \
    grep -q 'lib/copy lib/create.* lib/path' <<<"$found"
finish
