"""nniray.training_services"""
