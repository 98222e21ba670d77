"""The seed recipe in tf.keras (seed 002's stacked autoencoder), run by seed_recipe.py --peer-keras inside the
separate virtualenv described in bench/README.md. Reads arrays from an .npz (and a seed, 0 by default; a third
argument ``bias`` starts the output bias at the logit of each pixel's mean, as aecore does), prints one JSON line."""
import json
import sys
import time

import numpy as np
from tensorflow import keras

data = np.load(sys.argv[1])
x_train, x_val, x_test = data["x_train"], data["x_val"], data["x_test"]
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
bias_from_data = len(sys.argv) > 3 and sys.argv[3] == "bias"
keras.utils.set_random_seed(seed)
mean = np.clip(x_train.mean(0), 1e-3, 1 - 1e-3)
out_bias = keras.initializers.Constant(np.log(mean / (1 - mean))) if bias_from_data else "zeros"
encoder = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(100, activation="gelu"),
                            keras.layers.Dense(30, activation="gelu")])
decoder = keras.Sequential([keras.Input(shape=(30,)), keras.layers.Dense(100, activation="gelu"),
                            keras.layers.Dense(784, activation="sigmoid", bias_initializer=out_bias)])
model = keras.Sequential([encoder, decoder])
model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(1e-3))
start = time.perf_counter()
history = model.fit(x_train, x_train, validation_data=(x_val, x_val), batch_size=32, epochs=10, verbose=0)
seconds = time.perf_counter() - start
test_bce = float(model.evaluate(x_test, x_test, batch_size=1024, verbose=0))
print(json.dumps({"peer": f"tf.keras {keras.__version__}", "seed": seed,
                  "output_bias": "data mean" if bias_from_data else "zero", "seconds": round(seconds, 2),
                  "samples_per_s": round(10 * len(x_train) / seconds), "val_bce": round(history.history["val_loss"][-1], 5),
                  "test_bce": round(test_bce, 5)}))
