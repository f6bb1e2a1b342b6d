"""Testing your own replicated class on a three-node cluster inside the test process, with
agree.testing.MemoryCluster: real nodes (Raft, SQLite storage, your class) joined by an
in-memory network, on virtual time, so the test takes no wall time and leader elections,
crashes and restarts are the same on every run.  Run it with ``python -m pytest
examples/test_counter_cluster.py`` (docs/testing.md).
"""

from __future__ import annotations

from pathlib import Path

from agree import Replicated, command, query
from agree.testing import MemoryCluster, VirtualTimeLoop


class Tally(Replicated):
    def __init__(self) -> None:
        self.votes: dict[str, int] = {}

    @command
    def vote(self, option: str) -> int:
        self.votes[option] = self.votes.get(option, 0) + 1
        return self.votes[option]

    @query
    def results(self) -> dict[str, int]:
        return dict(self.votes)


async def scenario(directory: Path) -> None:
    async with MemoryCluster(directory, {"tally": Tally}, size=3, seed=1) as cluster:
        leader = await cluster.wait_leader()
        follower = next(node for node in cluster.running() if node is not leader)
        tally = follower.proxy("tally")  # any node will do: commands go to the leader
        assert await tally.vote("tea") == 1
        assert await tally.vote("coffee") == 1

        await cluster.stop_node(leader.id, crash=True)  # the leader dies without a word
        survivor = await cluster.wait_leader(among=[n.id for n in cluster.running()])
        assert survivor is not leader
        assert await survivor.proxy("tally").vote("tea") == 2  # two of three still commit

        restarted = await cluster.restart_node(leader.id)  # back on its own database
        status = survivor.status()
        await cluster.wait_applied(status.commit_index)  # it caught up
        assert cluster.local_state("tally", lambda t: t.votes) == {
            node_id: {"tea": 2, "coffee": 1} for node_id in cluster.ids
        }
        assert await restarted.proxy("tally").results() == {"tea": 2, "coffee": 1}


def test_votes_survive_the_loss_of_the_leader(tmp_path: Path) -> None:
    loop = VirtualTimeLoop()
    try:
        loop.run_until_complete(scenario(tmp_path))
    finally:
        loop.close()
