"""What the user writes: ``Replicated``, the operation marks, ``Mutation``, the operation schema
and the self-describing JSON form of untyped values."""
