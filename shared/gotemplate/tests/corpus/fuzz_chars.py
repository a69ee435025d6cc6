#!/usr/bin/env python3
"""Differential fuzzing: random characters around {{ }}. Usage: python3 fuzz_chars.py SEED > f.jsonl"""
import json, random, sys
random.seed(int(sys.argv[1]))
V = {"A": "alpha", "B": "", "x": "X", "_": "u", "é": "E"}
ascii = [chr(c) for c in range(32, 127)]
special = ["\t", "\n", "\r", "\v", "\f", "\x00", "\x7f", "é", "日", "\u00a0", "\u2028", "\U0001F600", "\u0301", "٣", "²"]
for n in range(30000):
    out = []
    for _ in range(random.randint(1, 6)):
        r = random.random()
        if r < 0.25: out.append("{{")
        elif r < 0.5: out.append("}}")
        else:
            k = random.randint(1, 6)
            out.append("".join(random.choice(ascii) if random.random() < 0.8 else random.choice(special) for _ in range(k)))
    t = "".join(out)
    if random.random() < 0.5 and not t.startswith("{{"): t = "{{" + t
    print(json.dumps({"name": f"c{sys.argv[1]}/{n}", "template": t, "values": V}, ensure_ascii=False))
