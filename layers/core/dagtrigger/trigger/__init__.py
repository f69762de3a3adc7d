"""The trigger kernel: claim, start and record one trigger; follow its run to the end."""
