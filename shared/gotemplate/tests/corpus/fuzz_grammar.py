#!/usr/bin/env python3
"""Differential fuzzing: random well-formed templates. Usage: python3 fuzz_grammar.py SEED > f.jsonl"""
import json, random, sys
random.seed(int(sys.argv[1]))
V = {"A": "alpha", "B": "", "N": "3", "Name": "h\u00e9llo", "Z": "0", "Q": "<a href='x'>&\"", "S": "a b/c?d=e"}
funcs0 = ["print", "println", "html", "js", "urlquery", "len", "not", "and", "or", "eq", "ne", "lt", "le", "gt", "ge", "index", "slice", "printf"]
def atom(vars, d):
    r = random.random()
    if d > 2 or r < 0.5:
        return random.choice([".A", ".B", ".N", ".Name", ".Z", ".Q", ".S", ".Missing", ".", "$", "1", "0", "2", "-1", "1.5", "true", "false", "\"x\"", "\"%d|%s|%v\"", "\"%q\"", "'a'", "nil", "(index .A 0)"] + vars)
    return "(" + pipe(vars, d + 1) + ")"
def cmd(vars, d):
    f = random.choice(funcs0 + [None, None])
    if f is None:
        return atom(vars, d)
    return " ".join([f] + [atom(vars, d) for _ in range(random.randint(0, 3))])
def pipe(vars, d):
    p = cmd(vars, d)
    for _ in range(random.randint(0, 2)):
        p += " | " + random.choice(funcs0) + "".join(" " + atom(vars, d) for _ in range(random.randint(0, 1)))
    return p
def block(vars, d, inrange):
    out = []
    vars = list(vars)
    for _ in range(random.randint(1, 4)):
        r = random.random()
        if r < 0.3:
            out.append(random.choice(["x", " ", "\n", "a\n  ", "\u00e9"]))
        elif r < 0.55 or d > 3:
            if random.random() < 0.2:
                v = "$v%d" % len(vars)
                out.append("{{" + v + " := " + pipe(vars, 0) + "}}")
                vars.append(v)
            elif random.random() < 0.1 and len(vars) > 0:
                out.append("{{" + random.choice(vars) + " = " + pipe(vars, 0) + "}}")
            else:
                out.append("{{" + random.choice(["", "- "]) + pipe(vars, 0) + random.choice(["", " -"]) + "}}")
        elif r < 0.7:
            kw = random.choice(["if", "with"])
            s = "{{" + kw + " " + pipe(vars, 0) + "}}" + block(vars, d + 1, inrange)
            if random.random() < 0.3:
                s += "{{else " + kw + " " + pipe(vars, 0) + "}}" + block(vars, d + 1, inrange)
            if random.random() < 0.5:
                s += "{{else}}" + block(vars, d + 1, inrange)
            out.append(s + "{{end}}")
        elif r < 0.85:
            decl = random.choice(["", "$i := ", "$k, $e := "])
            nv = vars + ([x.strip() for x in decl.replace(":=", "").split(",") if x.strip()])
            src = random.choice([".", "3", "0", ".N", "(len .A)", "(index .A 0)", ".A", "$", "-2"])
            s = "{{range " + decl + src + "}}" + block(nv, d + 1, True)
            if random.random() < 0.4:
                s += "{{else}}" + block(vars, d + 1, inrange)
            out.append(s + "{{end}}")
        elif inrange:
            out.append(random.choice(["{{break}}", "{{continue}}", "{{if .B}}{{break}}{{end}}", "{{if eq .A \"alpha\"}}{{continue}}{{end}}"]))
        else:
            out.append("{{/* c */}}")
    return "".join(out)
for n in range(15000):
    print(json.dumps({"name": f"g{sys.argv[1]}/{n}", "template": block([], 0, False), "values": V}, ensure_ascii=False))
