"""`make bench` (`python -m tools.bench`): how fast the gateway moves money, measured against
its own limits.

A load generator in this process drives gateway processes over real HTTP/1.1 keep-alive
connections; in the same invocation two baselines run on the same machine: the database limit
(the SQL of one capture run, straight through psycopg, no HTTP) and the HTTP limit (a bare
Starlette route on the same server settings returning a body of the same size); and a floor:
PostgreSQL alone doing the minimal durable work of a create and a capture (four commits on tables
of the gateway's shape), driven by pgbench, PostgreSQL's own load tool (floor.py).
"""
