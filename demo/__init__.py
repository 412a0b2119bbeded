"""The demo: synthetic support tickets and real transfer learning from all-MiniLM-L6-v2."""
