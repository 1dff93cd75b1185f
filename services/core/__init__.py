"""What every phonebank service shares: settings, numbering plan, records, keys, Lua, Kafka."""
