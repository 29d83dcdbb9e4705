tensor.backward(gradient=None, retain_graph=False, create_graph=False)
