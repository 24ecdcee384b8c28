"""rl3dedit.render"""
