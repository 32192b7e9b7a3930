"""The runtime: what every stage shares (consuming, dead letters, publishing, acknowledging after
confirmation, the processing-error policy, progress and counts). Stages only decode and handle."""
