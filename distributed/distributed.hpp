// Everything of xgrad::distributed (link xgrad::distributed): the process group, collectives and
// DistributedDataParallel.
#pragma once
#include "ddp.hpp"
#include "process_group.hpp"
