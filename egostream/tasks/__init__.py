"""Task heads (AR, LTA, OSCC, PNR, MQ): projection neck, head, loss and decoding, one module each."""
