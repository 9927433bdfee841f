"""Example: a Python program that checkpoints itself at a safe point and checks, after a
restart, that its state is exactly what it was.

    dmtcp_launch python3 selfckpt.py           # writes a checkpoint, then continues
    dmtcp_restart ckpt_*.dmtcp                 # continues from the checkpoint: "restart"

Prints "outcome <checkpoint|restart> state-ok <digest>" after the checkpoint call, then
"done <total>". Needs runtime/python on PYTHONPATH (dmtcp_launch adds it).
"""

import hashlib
import sys

import dmtcp


def main():
    if not dmtcp.is_enabled():
        print("not under dmtcp_launch: nothing to checkpoint", file=sys.stderr)
        return 2
    # Some state worth keeping: a dict, a list and a running digest.
    table = {i: i * i for i in range(10000)}
    seq = [str(i) for i in range(5000)]
    digest = hashlib.sha256("".join(seq).encode()).hexdigest()
    total = sum(table.values())

    outcome = dmtcp.checkpoint()

    same = (
        total == sum(table.values())
        and digest == hashlib.sha256("".join(seq).encode()).hexdigest()
        and all(table[i] == i * i for i in range(0, 10000, 97))
    )
    st = dmtcp.status()
    print("outcome %s state-%s %s" % (outcome, "ok" if same else "BAD", digest[:16]), flush=True)
    print("generation %d checkpoints %d restarts %d" % (st.generation, st.num_checkpoints, st.num_restarts), flush=True)
    # Work after the safe point, under a critical section the checkpoint must not cut.
    with dmtcp.checkpoints_delayed():
        total += len(seq)
    print("done %d" % total, flush=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
