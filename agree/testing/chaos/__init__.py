"""Fault injection on real node processes, every history checked: ``python -m agree.testing.chaos``.

* :mod:`~agree.testing.chaos.proxy`: an ingress per node charging each peer connection to its
  directed link, the faults of every link, and the partition shapes;
* :mod:`~agree.testing.chaos.cluster`: ``runnode`` processes wired through the proxies, and the
  process faults (SIGKILL, SIGSTOP, per-node tick intervals and commit delays, new node ids);
* :mod:`~agree.testing.chaos.nemesis`: the seeded fault schedule, membership churn included;
* :mod:`~agree.testing.chaos.resume`: a resumed old leader's answers, checked directly;
* :mod:`~agree.testing.chaos.overload`: thousands of commands in flight, then convergence,
  liveness and memory;
* :mod:`~agree.testing.chaos.workloads` and :mod:`~agree.testing.chaos.models`: the clients and
  the replicated objects they call;
* :mod:`~agree.testing.chaos.history`: Jepsen-form histories and their checks;
* :mod:`~agree.testing.chaos.runner`: one run, start to verdict.

The negative controls that prove these checks can fail are switches in the runtime itself
(:mod:`agree.unsafe`), refused unless a testing flag is set too.
"""
