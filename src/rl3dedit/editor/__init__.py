"""rl3dedit.editor"""
