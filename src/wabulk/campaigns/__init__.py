"""Templates, campaigns, rendering, scheduling and reports."""
