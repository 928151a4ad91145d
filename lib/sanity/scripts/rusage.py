import os, resource, subprocess, sys, time
out, argv = sys.argv[1], sys.argv[2:]
env = dict(os.environ)
preload = env.pop("HEAPLAB_SANITY_PRELOAD", "")
if preload:
    env["LD_PRELOAD"] = preload
start = time.perf_counter()
try:
    status = subprocess.call(argv, env=env)
except OSError as e:
    sys.stderr.write("heaplab sanity: cannot run %s: %s\n" % (argv[0], e))
    status = 127
elapsed = time.perf_counter() - start
with open(out, "w") as f:
    f.write("%d %.6f %d\n" % (status, elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
