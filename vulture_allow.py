"""What vulture (`./dev lint`) cannot see being used, each with the reason. Anything else it
reports is dead code: delete it rather than adding it here."""

# ruff: noqa: B018, F821
# The OpenAPI document's schemas: pydantic reads these fields; no Python code names them.
ErrorInfo
domain
innererror
httpCode
rpcCode
percentComplete
nextPageToken
nextLink
operationId
runNo
createdAfter
createdBefore
startedAfter
startedBefore
orderBy
matched
processed
argumentsSchema
checks
timeoutSeconds
schema_
personalEmailChannel
regex  # Starlette's path converters read it
# Public API that only users call (documented, not called inside longops).
_.wait_async
_.get_async
_.can_move_to  # domain.status's doctest
DONE_STATUSES  # longops.client
# Called by frameworks by name: Typer, uvicorn, multiprocessing, sqlite3, Jinja2 templates.
_.no_args_is_help
_.obj  # Typer's context object: commands find the root's CliState there
__getattr__  # module attributes on first use (PEP 562): longops/__init__.py
__dir__
_.capture_signals
# uvicorn's Multiprocess calls these of SpreadProcesses (cli/serve.py) by name.
_.init_processes
_.keep_subprocess_alive
_.restart_all
_.handle_ttin
_.handle_ttou
process_server
child_entry
_._keeper  # keeps the in-memory database's keeper connection alive
_.row_factory
running_percent
_.running_percent
danger
# The demo's tasks (registered by @demo.task on a module object vulture does not follow).
render_report
import_items
crunch_numbers
sync_catalogue
post_invoices
clean_up
# test_argument_types: parameters whose annotations are what the test reads.
flag
tags
weights
anything
# Rich's Table settings, read by Rich.
show_edge
collapse_padding
# pytest-xdist's scheduler hooks (tests/conftest.py), called by xdist.
workqueue
_split_scope
# Migration flags (store/migrate.py): public, read by `db upgrade`'s maintenance check and tests.
compatible
online
# Maintenance mode's response model (api/maintenance.py): pydantic reads these fields.
startedAt
stoppedAt
drainDeadline
# The pages' navigation reads it in base.html (Sessions for SUPER users only, issue 17).
may_list_sessions
# A schemathesis test built where it runs (tests/api/conftest.py): inspect (pytest's fixture
# names) and Hypothesis' pytest plugin read these.
_.__signature__
_.is_hypothesis_test
# queue.Queue bookkeeping that Handoff._start keeps as Queue.put would (task_done, join).
unfinished_tasks
