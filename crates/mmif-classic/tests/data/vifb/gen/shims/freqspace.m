function [f1, f2] = freqspace(n, flag)
% MATLAB's freqspace for a 2-D size, as documented: frequencies (k - floor(N/2)) * 2/N.
m = n(1); nn = n(end);
f1 = ((0:nn-1) - floor(nn/2)) * (2/nn);
f2 = ((0:m-1) - floor(m/2)) * (2/m);
if nargin > 1 && strcmp(flag, 'meshgrid')
  [f1, f2] = meshgrid(f1, f2);
end
end
