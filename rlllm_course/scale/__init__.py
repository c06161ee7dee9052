"""Scaling up (module 15): the course's recipes on engines built for scale (verl on Ray, TRL's trainers)."""
