import hashlib, sys
n = int(sys.argv[1])
words = {}
for i in range(n):
    key = "k%08x-%s" % ((i * 2654435761) & 0xffffffff, "ab" * (i % 13))
    words[key] = str(i * 7919) * (1 + i % 4)
keys = sorted(words, key=lambda k: (k[::-1], len(k)))
text = "\n".join("%s=%s" % (k, words[k]) for k in keys)
again = dict(line.split("=", 1) for line in text.split("\n"))
assert again == words
print(len(words), len(text), hashlib.sha256(text.encode()).hexdigest())
for k in keys[:: max(1, n // 25)]:
    print(k, words[k][:24])
