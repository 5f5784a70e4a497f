"""The worker side of a generation: `prepare` (running the `stages` before rendering),
`render` (one item) and `recovery` (work whose worker or message was lost).

Item status changes and the counters they move are in `lifecycle`, over the SQL that
`statements` builds; `finalise` decides a variant and a generation once their last item has
ended, saving the `evaluation` of what was produced.
"""
