import Recurrent
print(BLAS.implementation)
