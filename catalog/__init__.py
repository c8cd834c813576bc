"""viml.catalog"""
