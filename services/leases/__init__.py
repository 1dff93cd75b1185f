"""The lease engine: Lua scripts and their loader, key scheme, lease client, queues,
do-not-call store, reaper, relay."""
