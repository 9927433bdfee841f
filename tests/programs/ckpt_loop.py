# A Python loop whose state (a dict and a running SHA-256) must continue exactly after restart.
import sys, time, hashlib
d = {}
h = hashlib.sha256()
n = 0
limit = int(sys.argv[1]) if len(sys.argv) > 1 else 10**9
while n < limit:
    n += 1
    d[n] = str(n) * 3
    h.update(d[n].encode())
    if len(d) != n:
        print("CORRUPT", n, flush=True); sys.exit(3)
    print("tick", n, h.hexdigest()[:16], flush=True)
    time.sleep(0.02)
print("done", flush=True)
