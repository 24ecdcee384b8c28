"""rl3dedit.views"""
