/* SPDX-License-Identifier: Apache-2.0 */ /* placeholder: remove when real sources land */
