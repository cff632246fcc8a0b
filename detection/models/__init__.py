"""What a detector learns: conv trunks (conv5 at stride 16), the fc6/fc7/fc8 head, box regressors."""
