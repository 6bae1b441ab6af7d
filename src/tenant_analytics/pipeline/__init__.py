"""The hourly pipeline's steps: plan, export, load, publish. Each is called by a thin Lambda handler."""
