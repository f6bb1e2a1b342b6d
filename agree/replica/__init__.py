"""One group's replicated state machine: the host that applies committed records, the client
sessions, subscriptions, the cluster's recorded schemas and the state lock."""
