"""The one door for the web SPA:
routes /api/v1/<service>/... to each service and reports the health of the whole platform.
"""
