#!/usr/bin/env python3
"""
The layout rule of lib/, checked on the code as built (docs/architecture.md):

  - lib/ holds three folders: common/ (what both libraries link), server/
    (libvfio-user) and client/ (libvfio-user-client);
  - between the files of lib/ no circle: no file reaches itself by following
    includes and calls;
  - between the folders only server -> common and client -> common: common/
    includes and calls neither library, and neither library the other.

Edges, from the build directory:
  include  A -> B  when A has `#include "B"` and B, looked up as the compiler
                   does (A's folder, then the -I folders of A's compile
                   command in compile_commands.json; for a header, those of
                   the sources of its folder), is a file of lib/;
  call     A -> B  when the object file of A needs (nm: U) a symbol the
                   object file of B defines: a call, or a function's
                   address taken (a callback handed over);
  inline   H -> B  when the body of a function defined in header H (static
                   inline) names a function B's object file defines: the
                   header's own call, as well as its includer's.

  check_graph.py BUILD SRC            checks; prints the layers on success
  check_graph.py BUILD SRC --draw     prints only the picture of the layers
  check_graph.py BUILD SRC --doc FILE also fails when FILE's picture (between
                                      the layout-graph markers) is not the
                                      one the code gives
  check_graph.py --self-test          shows the checks fail where they must
"""
import json
import os
import re
import shlex
import subprocess
import sys

FOLDERS = ('common', 'server', 'client')
# Which folder's files may include or call which folder's files.
ALLOWED = {
    'common': {'common'},
    'server': {'server', 'common'},
    'client': {'client', 'common'},
}
DOC_BEGIN = '<!-- layout-graph: begin (test/layout/check_graph.py --draw) -->'
DOC_END = '<!-- layout-graph: end -->'
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


class Graph:
    """Files of lib/ (paths relative to lib/) and the edges between them."""

    def __init__(self):
        self.files = set()
        self.edges = {}          # (a, b) -> set of why (symbol or #include)

    def add(self, a, b, why):
        if a != b:
            self.edges.setdefault((a, b), set()).add(why)

    def succ(self, a):
        return sorted(b for (x, b) in self.edges if x == a)


def folder(path):
    return path.split('/', 1)[0]


# ------------------------------------------------------------------
# Reading the build
# ------------------------------------------------------------------

CALL_RE = re.compile(r'\b([A-Za-z_]\w*)\s*\(')
KEYWORDS = {'if', 'while', 'for', 'switch', 'return', 'sizeof', '_Alignof',
            '_Static_assert', '__typeof__', 'typeof', '__attribute__'}


def inline_calls(text):
    """Names called in the bodies of the functions a header defines."""
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    text = re.sub(r'//[^\n]*', ' ', text)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    text = re.sub(r'^\s*#(.*\\\n)*.*$', ' ', text, flags=re.M)
    names, depth, body, start = set(), 0, False, 0
    for i, ch in enumerate(text):
        if ch == '{':
            if depth == 0:
                body = text[:i].rstrip().endswith(')')
                start = i
            depth += 1
        elif ch == '}':
            depth -= 1
            if depth == 0 and body:
                names.update(CALL_RE.findall(text[start:i]))
    return names - KEYWORDS

def compile_commands(build):
    """{lib-relative source: (object path, [include dirs])}, one each."""
    with open(os.path.join(build, 'compile_commands.json')) as f:
        entries = json.load(f)
    out = {}
    for e in entries:
        d = os.path.abspath(e['directory'])
        src = os.path.normpath(os.path.join(d, e['file']))
        args = e['arguments'] if 'arguments' in e else shlex.split(e['command'])
        obj, incs = None, []
        i = 0
        while i < len(args):
            a = args[i]
            if a == '-o' and i + 1 < len(args):
                obj = args[i + 1]
                i += 1
            elif a == '-I' and i + 1 < len(args):
                incs.append(args[i + 1])
                i += 1
            elif a.startswith('-I'):
                incs.append(a[2:])
            i += 1
        if obj is None:
            continue
        obj = os.path.normpath(os.path.join(d, obj))
        incs = [os.path.normpath(os.path.join(d, x)) for x in incs]
        out.setdefault(src, []).append((obj, incs))
    return out


def pick(objects):
    """The object of the internal (all symbols kept) build, if there is one."""
    for obj, incs in objects:
        if '-internal' in obj:
            return obj, incs
    return objects[0]


def nm_symbols(obj):
    """(defined, undefined) global symbol names of an object file."""
    res = subprocess.run(['nm', obj], capture_output=True, text=True,
                         check=True)
    defined, undefined = set(), set()
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == 'U':
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in 'TDBRGSVWCi':
            defined.add(parts[2])
    return defined, undefined


def read_graph(build, src_root):
    lib = os.path.abspath(os.path.join(src_root, 'lib'))
    g = Graph()
    for dirpath, _, names in os.walk(lib):
        for n in names:
            if n.endswith(('.c', '.h')):
                g.files.add(os.path.relpath(os.path.join(dirpath, n), lib))
    for f in g.files:
        if folder(f) not in FOLDERS:
            raise SystemExit('layout: lib/%s is outside lib/{%s}/'
                             % (f, ','.join(FOLDERS)))
    for fo in FOLDERS:
        if not os.path.isdir(os.path.join(lib, fo)):
            raise SystemExit('layout: lib/%s/ is missing' % fo)

    cmds = compile_commands(build)
    per_src = {}                    # lib-relative .c -> (object, include dirs)
    for src, objs in cmds.items():
        if src.startswith(lib + os.sep):
            per_src[os.path.relpath(src, lib)] = pick(objs)
    missing = sorted(f for f in g.files if f.endswith('.c')
                     and f not in per_src)
    if missing:
        raise SystemExit('layout: not built (not in compile_commands.json): '
                         + ', '.join(missing))

    # Includes.
    folder_incs = {}
    for src, (_, incs) in per_src.items():
        folder_incs.setdefault(os.path.dirname(src), [])
        for d in incs:
            if d not in folder_incs[os.path.dirname(src)]:
                folder_incs[os.path.dirname(src)].append(d)
    for f in sorted(g.files):
        path = os.path.join(lib, f)
        own = os.path.dirname(path)
        dirs = [own] + (per_src[f][1] if f in per_src
                        else folder_incs.get(os.path.dirname(f), []))
        with open(path, errors='replace') as fh:
            text = fh.read()
        for name in INCLUDE_RE.findall(text):
            for d in dirs:
                cand = os.path.normpath(os.path.join(d, name))
                if os.path.isfile(cand):
                    if cand.startswith(lib + os.sep):
                        g.add(f, os.path.relpath(cand, lib),
                              '#include "%s"' % name)
                    break

    # Calls.
    defs, undefs = {}, {}
    for src, (obj, _) in per_src.items():
        defs[src], undefs[src] = nm_symbols(obj)
    owner = {}
    for src in sorted(defs):
        for s in defs[src]:
            owner.setdefault(s, set()).add(src)
    for src in sorted(undefs):
        for s in undefs[src]:
            for o in owner.get(s, ()):
                g.add(src, o, s)
    for f in sorted(g.files):
        if f.endswith('.h'):
            with open(os.path.join(lib, f), errors='replace') as fh:
                for s in sorted(inline_calls(fh.read())):
                    for o in owner.get(s, ()):
                        g.add(f, o, s + ' (inline)')
    return g


# ------------------------------------------------------------------
# The checks
# ------------------------------------------------------------------

def circles(g):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    nodes = sorted(g.files | {x for e in g.edges for x in e})
    succ = {n: [] for n in nodes}
    for (a, b) in g.edges:
        succ[a].append(b)

    def visit(v):
        work = [(v, iter(sorted(succ[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(succ[w]))))
                    advanced = True
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))

    for n in nodes:
        if n not in index:
            visit(n)
    return sorted(out)


def why(g, a, b, limit=6):
    names = sorted(g.edges[(a, b)])
    more = len(names) - limit
    text = ', '.join(names[:limit])
    return text + (', and %d more' % more if more > 0 else '')


def check(g):
    """The faults, as lines of text; none when the layout holds."""
    faults = []
    for comp in circles(g):
        faults.append('circle of %d files: %s' % (len(comp), ', '.join(comp)))
        members = set(comp)
        for (a, b) in sorted(g.edges):
            if a in members and b in members:
                faults.append('    %s -> %s: %s' % (a, b, why(g, a, b)))
    for (a, b) in sorted(g.edges):
        if folder(b) not in ALLOWED[folder(a)]:
            faults.append('%s/ may not reach %s/: %s -> %s: %s'
                          % (folder(a), folder(b), a, b, why(g, a, b)))
    return faults


# ------------------------------------------------------------------
# The picture
# ------------------------------------------------------------------

def levels(g):
    """Floor of each source file: 0 calls no other, else 1 + the highest
    floor it calls. Only for a graph without circles."""
    srcs = sorted(f for f in g.files if f.endswith('.c'))
    calls = {s: [b for b in g.succ(s) if b.endswith('.c')] for s in srcs}
    floor = {}

    def of(s):
        if s not in floor:
            floor[s] = 1 + max((of(b) for b in calls[s]), default=-1)
        return floor[s]

    for s in srcs:
        of(s)
    return floor


def draw(g):
    floor = levels(g)
    titles = {
        'server': 'lib/server/  libvfio-user',
        'client': 'lib/client/  libvfio-user-client',
        'common': 'lib/common/  linked into both',
    }
    width = 72
    lines = []
    for fo in ('server', 'client', 'common'):
        files = sorted(f for f in floor if folder(f) == fo)
        if not files:
            continue
        lines.append(titles[fo])
        top = max(floor[f] for f in files)
        for lv in range(top, -1, -1):
            names = [os.path.basename(f) for f in files if floor[f] == lv]
            if not names:
                continue
            row, first = '', True
            for n in names:
                if len(row) + len(n) + 2 > width - 8 and row:
                    lines.append(('  %2d  ' % lv if first else '      ')
                                 + row.rstrip())
                    row, first = '', False
                row += n + '  '
            lines.append(('  %2d  ' % lv if first else '      ')
                         + row.rstrip())
        lines.append('')
    lines.append('Floor 0 calls no other file of lib/; each file calls only '
                 'files on')
    lines.append('floors below its own, in its folder or in lib/common/.')
    return '\n'.join(lines)


def doc_picture(path):
    with open(path) as f:
        text = f.read()
    if DOC_BEGIN not in text or DOC_END not in text:
        return None
    body = text.split(DOC_BEGIN, 1)[1].split(DOC_END, 1)[0]
    body = body.strip('\n')
    if body.startswith('```'):
        body = body.split('\n', 1)[1]
    if body.endswith('```'):
        body = body.rsplit('\n', 1)[0]
    return body.strip('\n')


# ------------------------------------------------------------------
# Self-test: synthetic graphs the checks must refuse
# ------------------------------------------------------------------

def self_test():
    def graph(edges):
        g = Graph()
        for a, b in edges:
            g.files.update((a, b))
            g.add(a, b, 'sym_%s' % os.path.basename(b).split('.')[0])
        return g

    ok = graph([('server/ctx.c', 'server/dispatch.c'),
                ('server/dispatch.c', 'common/tran.c'),
                ('client/client.c', 'common/tran.c'),
                ('server/ctx.c', 'server/private.h'),
                ('server/dispatch.c', 'server/private.h')])
    assert check(ok) == [], check(ok)
    assert levels(ok) == {'server/ctx.c': 2, 'server/dispatch.c': 1,
                          'client/client.c': 1, 'common/tran.c': 0}

    cyc = graph([('server/a.c', 'server/b.c'), ('server/b.c', 'server/c.c'),
                 ('server/c.c', 'server/a.c'), ('server/d.c', 'server/a.c')])
    f = check(cyc)
    assert f and f[0] == 'circle of 3 files: server/a.c, server/b.c, ' \
                         'server/c.c', f
    assert not any('server/d.c ->' in x for x in f), f

    # A circle through a header: a.c includes h.h, h.h's code calls a.c.
    hdr = graph([('server/a.c', 'server/h.h'), ('server/h.h', 'server/a.c')])
    assert check(hdr) and check(hdr)[0].startswith('circle of 2'), check(hdr)

    # What a header's inline functions call, not what it declares.
    h = """/* f(x) */
#define M(a) g(a)
struct s { int (*cb)(int); };
int declared(int a);
static inline int
inl(int a)
{
    if (a) { return called(a); }
    return other (a) + sizeof(struct s);
}
"""
    assert inline_calls(h) == {'called', 'other'}, inline_calls(h)

    up = graph([('common/tran.c', 'server/ctx.c')])
    assert check(up) == ['common/ may not reach server/: common/tran.c -> '
                         'server/ctx.c: sym_ctx'], check(up)
    across = graph([('client/client.c', 'server/dma.c'),
                    ('server/irq.c', 'client/client_irq.c')])
    assert len(check(across)) == 2, check(across)

    # A two-file circle between folders is both a circle and a fault of folder.
    both = graph([('common/tran.c', 'client/client.c'),
                  ('client/client.c', 'common/tran.c')])
    f = check(both)
    assert f[0].startswith('circle of 2') and \
        any(x.startswith('common/ may not reach client/') for x in f), f
    print('self-test: circles, a circle through a header and calls between '
          'folders are refused')


def main(argv):
    if argv[1:] == ['--self-test']:
        self_test()
        return 0
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    build, src = argv[1], argv[2]
    g = read_graph(build, src)
    if '--draw' in argv[3:]:
        faults = check(g)
        if faults:
            print('\n'.join(faults), file=sys.stderr)
            return 1
        print(draw(g))
        return 0
    faults = check(g)
    nc = sum(1 for f in g.files if f.endswith('.c'))
    nh = len(g.files) - nc
    print('lib/: %d sources, %d headers, %d include and call edges'
          % (nc, nh, len(g.edges)))
    if faults:
        print('layout: FAILED')
        print('\n'.join(faults))
        return 1
    print(draw(g))
    if '--doc' in argv[3:]:
        doc = argv[argv.index('--doc') + 1]
        pic = doc_picture(doc)
        if pic != draw(g).strip('\n'):
            print('layout: the picture in %s is not the one the code gives; '
                  'put the one above between its layout-graph markers' % doc)
            return 1
        print('layout: %s shows these layers' % doc)
    print('layout: no circle between files, folders reached as allowed')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
