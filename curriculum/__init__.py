"""The curriculum engine: stages, promotion rules, teachers, the training runner, tracking, reports and the CLI."""
