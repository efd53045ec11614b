import LoadGen
