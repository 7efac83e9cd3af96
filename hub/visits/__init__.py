"""Patrol (巡查): planned visits of grid workers to the residents of their grids, scheduled from each
community's visit plans, recorded from the caregiver page, and an alert when one is overdue."""
