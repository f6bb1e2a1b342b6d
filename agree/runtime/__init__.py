"""The asyncio runtime of a node: its Raft groups, their storage, ticker and routing."""
