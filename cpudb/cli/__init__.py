"""Stage: the command line. One thin module per command group: each command parses its options,
calls one library function and prints its result. May import any stage but the build tools,
which only their own commands load."""
