"""A sample agree project: replicated classes a newcomer can host, call and read."""
