"""End-to-end test of the plugin in a real maubot and Synapse."""
