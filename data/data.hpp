// Everything in xgrad::data: datasets, the DataLoader and file readers.
#pragma once

#include "csv.hpp"
#include "dataloader.hpp"
#include "dataset.hpp"
#include "fashion_mnist.hpp"
#include "idx.hpp"
